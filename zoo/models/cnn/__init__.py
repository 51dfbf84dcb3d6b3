"""Convolutional networks (seeds kang-lecture4, duan, khanzhina). Image inputs are NHWC:
``x: (B, H, W, C) float32``; the text CNN (`textcnn`) reads token ids ``(B, T)`` int32.
Importing this package registers every CNN."""

from zoo.models.cnn import alexnet, densenet, googlenet, lenet, resnet, textcnn, vgg  # noqa: F401
