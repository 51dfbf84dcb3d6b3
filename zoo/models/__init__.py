"""Model families. Importing this package registers every model (see zoo.registry)."""

from zoo.models import (  # noqa: F401
    autoencoders,
    cnn,
    convlstm,
    energy,
    hierarchical,
    localisation,
    perceptron,
    recurrent,
    seq2seq,
)

# Composite families (vqa, captioning) build on registered CNNs and recurrent models.
from zoo.models import captioning, vqa  # noqa: F401
