from vidgan.cli import main


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "vidgan" in capsys.readouterr().out


def test_unknown_command_is_usage_error(capsys):
    import pytest

    with pytest.raises(SystemExit) as e:
        main(["no-such-command"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
