"""unet_tutorial: the small package behind the five U-Net notebooks.

Import from the module that holds an idea, e.g. ``from unet_tutorial.model import UNet``,
so that you always know which file to open.
"""

__version__ = "0.1.0"
