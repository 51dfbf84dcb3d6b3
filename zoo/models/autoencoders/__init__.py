"""Autoencoders: dense (plain, linear, stacked, denoising, sparse, variational), the
convolutional autoencoder with its two decoders (max-unpooling, transposed convolution),
and the encoder-decoder segmentation networks SegNet and U-Net."""

from zoo.models.autoencoders import conv, dense, segmentation  # noqa: F401
