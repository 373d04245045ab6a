"""Parts shared by two or more models: layers, filters and the differentiable augmentation.

Each module is imported by name (`from vidgan.nn.augment import DiffAugment`); this package
imports nothing itself, so adding a module never slows down or breaks another.
"""
