"""Training recipes: how each paper trains, in terms of `vidgan.train.recipe.TrainRecipe`.

A recipe says what each discriminator of a model sees and sets the paper's hyper-parameters;
each recipe module attaches its recipe to the registered model (`attach_recipe`). Kept apart
from the model files so that a model file reads like the paper's architecture and the training
loop stays model-agnostic.
"""

from vidgan.recipes import digan, fmr, g3an  # noqa: F401
