"""unet_tutorial: the small package behind the five U-Net notebooks.

Import from the module that holds an idea, e.g. ``from unet_tutorial.model import UNet``,
so that you always know which file to open. Two tiers:

- the library, flat: model, densenet_unet, models, losses, metrics, data, readers, folder, transforms, loaders, train,
  schedules, precision, checkpoint, predict, measure, viz, conventions, utils, cli (+ cli_args, cli_train,
  cli_predict), distributed;
- ``unet_tutorial.course``: the course's tooling (self-checks, readings, the grader, widgets, diagrams, generated
  sample data, downloads), which a practitioner can ignore.
"""

__version__ = "0.1.0"
