"""Convolutional networks (seeds kang-lecture4, duan, khanzhina). Inputs are NHWC:
``x: (B, H, W, C) float32``. Importing this package registers every CNN."""

from zoo.models.cnn import alexnet, densenet, googlenet, lenet, resnet, vgg  # noqa: F401
