"""`vidgan explore`: serve the explorer page for one checkpoint on a local address."""

from __future__ import annotations

import argparse

from vidgan.commands import COMMANDS, Command
from vidgan.errors import VidganError

LOOPBACK = ("127.0.0.1", "localhost", "::1")

DESCRIPTION = """\
Open a local web page to play with one checkpoint (a vidgan model file, a training run folder,
or an official DIGAN / FMR / G3AN file): sample content and motion codes by seed, play and
scrub the video (continuous-time models render any moment, also past the training range),
change the frame rate, DIGAN's resolution and zoom, FMR's frequency bands (spectrum, keep,
remove, alter), G3AN's appearance x motion pairs and lengths, and download mp4 or gif.

The server binds 127.0.0.1 by default; Ctrl+C stops it.

Examples:
  vidgan explore src/vidgan/assets/fmr-toy-32.safetensors
  vidgan explore runs/digan-toy32 --port 8000
  vidgan explore g3an.pth --from g3an
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("ckpt", help="model file, run folder, or official checkpoint")
    p.add_argument("--from", dest="source", default=None, help="official format: digan|fmr|g3an")
    p.add_argument("--port", type=int, default=7860, help="port (0 = any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N")


def _bind(host: str, port: int):
    import socket

    if not 0 <= port <= 65535:
        raise VidganError(f"--port must be 0..65535, got {port}.")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise VidganError(
            f"cannot listen on --host {host} --port {port} ({e.strerror}); "
            "pick another --port (0 = any free one)."
        ) from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from vidgan.explore import Explorer, create_app
    from vidgan.train.dist import pick_device

    device = str(pick_device(args.device))
    sock = _bind(args.host, args.port)
    try:
        explorer = Explorer.load(args.ckpt, source=args.source, device=device)
        loopback = args.host in LOOPBACK
        # Host-header check against DNS rebinding (IPv6 hosts carry brackets it cannot parse)
        hosts = ["127.0.0.1", "localhost"] if args.host in LOOPBACK[:2] else None
        app = create_app(explorer, allowed_hosts=hosts, device=device)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        info = explorer.info()
        print(f"vidgan explore: {info['model']} ({info['generator']}) from {args.ckpt}", flush=True)
        print(
            f"vidgan explore: open http://{shown}:{port}/ in a browser (Ctrl+C stops)", flush=True
        )
        if not loopback:
            print("vidgan explore: warning: not on loopback; anyone who reaches it can use it")
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        try:
            server.run(sockets=[sock])
        finally:
            app.state.jobs.shutdown()
    finally:
        sock.close()
    return 0


COMMANDS.add(
    "explore",
    Command(
        help="serve a local web page to sample, scrub and edit one checkpoint's videos",
        description=DESCRIPTION,
        configure=configure,
        run=run,
    ),
)
