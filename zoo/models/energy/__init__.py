"""Associative and energy-based networks: Hopfield, Hamming with MAXNET, Boltzmann machine,
RBM, deep belief net, and a discrete Markov chain.

Seeds: khanzhina ("Hopfield neural network", "Hamming neural network": Hebbian weights
with zero diagonal, recall until the outputs stop changing; first layer ``w_ik = x_i^k / 2``,
``T_k = n / 2``, MAXNET lateral inhibition), kang-lecture4 (the "Neural Network Zoo" chart:
Markov chain, Hopfield network, Boltzmann machine, restricted BM, deep belief network;
greedy layer-wise pre-training).

Everything is first a pure, jit-able function of arrays for one pattern or chain (vmap it
for a batch). Bipolar states are float32 in {-1, +1}; binary states float32 in {0, 1}.
The registered Linen modules (``hopfield``, ``hamming``, ``rbm``) wrap them: each takes
x: (B, *input_shape) float32 in [0, 1] (binarised at ``threshold``) and returns class
scores (B, num_classes), so `zoo.fit` trains it on a classification set by its rule
(``learning_rule``: Hebbian storage or contrastive divergence) and reports accuracy; the
associative recall itself is a method (``recall``) and the pure functions.

One module per network: `hopfield`, `hamming`, `boltzmann` (BM, RBM, DBN), `markov`.
"""

from zoo.models.energy._common import all_binary_states, check_bipolar, to_bipolar
from zoo.models.energy.boltzmann import (
    RBM,
    BoltzmannMachine,
    bm_distribution,
    bm_energy,
    bm_exact_gradient,
    bm_gibbs_sweep,
    bm_log_likelihood,
    bm_rule,
    bm_sample,
    bm_sampled_gradient,
    dbn_mlp_params,
    rbm_cd_gradient,
    rbm_free_energy,
    rbm_gibbs_step,
    rbm_hidden_probs,
    rbm_log_likelihood,
    rbm_log_partition,
    rbm_reconstruct,
    rbm_rule,
    rbm_sample,
    rbm_visible_probs,
)
from zoo.models.energy.hamming import (
    Hamming,
    hamming_recall,
    hamming_recall_batch,
    hamming_rule,
    hamming_scores,
    maxnet,
)
from zoo.models.energy.hopfield import (
    Hopfield,
    flip_bits,
    hebbian_weights,
    hopfield_async_sweep,
    hopfield_energy,
    hopfield_recall,
    hopfield_recall_async,
    hopfield_recall_batch,
    hopfield_rule,
    hopfield_step,
)
from zoo.models.energy.markov import check_transition_matrix, markov_sample, stationary_distribution

__all__ = [
    "RBM",
    "BoltzmannMachine",
    "bm_rule",
    "bm_sampled_gradient",
    "Hamming",
    "Hopfield",
    "all_binary_states",
    "bm_distribution",
    "bm_energy",
    "bm_exact_gradient",
    "bm_gibbs_sweep",
    "bm_log_likelihood",
    "bm_sample",
    "check_bipolar",
    "check_transition_matrix",
    "dbn_mlp_params",
    "flip_bits",
    "hamming_recall",
    "hamming_recall_batch",
    "hamming_rule",
    "hamming_scores",
    "hebbian_weights",
    "hopfield_async_sweep",
    "hopfield_energy",
    "hopfield_recall",
    "hopfield_recall_async",
    "hopfield_recall_batch",
    "hopfield_rule",
    "hopfield_step",
    "markov_sample",
    "maxnet",
    "rbm_cd_gradient",
    "rbm_free_energy",
    "rbm_gibbs_step",
    "rbm_hidden_probs",
    "rbm_log_likelihood",
    "rbm_log_partition",
    "rbm_reconstruct",
    "rbm_rule",
    "rbm_sample",
    "rbm_visible_probs",
    "stationary_distribution",
    "to_bipolar",
]
