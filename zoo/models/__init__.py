"""Model families. Importing this package registers every model (see zoo.registry)."""

from zoo.models import autoencoders, cnn, convlstm, energy, hierarchical, perceptron, recurrent, seq2seq, vqa  # noqa: F401
