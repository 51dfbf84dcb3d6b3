"""Model families. Importing this package registers every model (see zoo.registry)."""

# Composite families (vqa, captioning) build on registered CNNs and recurrent models.
from zoo.models import autoencoders, cnn, convlstm, energy, hierarchical, perceptron, recurrent, seq2seq  # noqa: F401
from zoo.models import captioning, vqa  # noqa: F401
