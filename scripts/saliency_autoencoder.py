"""Saliency detection with a convolutional autoencoder (seed kang-lecture4, "Convolutional
Auto-Encoder": "it is not necessary to use CAE to reconstruct the original image ...
saliency detection: input an image, output the most important area").

The zoo's convolutional autoencoder (`conv_autoencoder`, max-unpooling decoder, or
``--decoder transposed``) is trained to map a generated scene (`salient_scenes`: one large
bright object among small distractors as bright as it can be) to the object's mask instead
of the scene itself: the decoder's one output map is read as per-pixel logits of
"salient", trained by binary cross-entropy. Reports the test IoU of the thresholded mask
(sigmoid > 0.5) against the true one, and the same for the baseline that thresholds the
image's brightness.

    python scripts/saliency_autoencoder.py [--epochs 10] [--decoder unpool|transposed]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import zoo
from zoo.data import load_dataset


def iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks, pooled over all pixels."""
    return float((predicted & truth).sum() / max((predicted | truth).sum(), 1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--decoder", default="unpool", choices=("unpool", "transposed"))
    parser.add_argument("--num-examples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    data = load_dataset("salient_scenes", seed=args.seed, num_examples=args.num_examples, num_test_examples=500)
    model = zoo.create_model("conv_autoencoder", input_shape=data.input_shape, decoder=args.decoder, batch_norm=True)
    x_train, y_train = data.x_train, data.y_train[..., None].astype(np.float32)
    variables = model.init(jax.random.PRNGKey(args.seed), jnp.asarray(x_train[:2]))
    params, stats = variables["params"], variables["batch_stats"]
    steps_per_epoch = len(x_train) // args.batch_size
    tx = optax.adam(optax.cosine_decay_schedule(args.lr, args.epochs * steps_per_epoch))
    opt_state = tx.init(params)

    @jax.jit
    def train_step(params, stats, opt_state, x, mask):
        def loss_fn(p):
            out, state = model.apply({"params": p, "batch_stats": stats}, x, train=True, mutable=["batch_stats"])
            loss = optax.sigmoid_binary_cross_entropy(out["reconstruction_logits"], mask).mean()
            return loss, state["batch_stats"]

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state, loss

    @jax.jit
    def predict(params, stats, x):
        return model.apply({"params": params, "batch_stats": stats}, x)["reconstruction_logits"][..., 0] > 0

    order_rng = np.random.default_rng(args.seed)
    for epoch in range(1, args.epochs + 1):
        order = order_rng.permutation(len(x_train))
        losses = []
        for i in range(steps_per_epoch):
            idx = order[i * args.batch_size : (i + 1) * args.batch_size]
            params, stats, opt_state, loss = train_step(params, stats, opt_state, x_train[idx], y_train[idx])
            losses.append(loss)
        print(f"epoch {epoch}: train loss {float(np.mean(jax.device_get(losses))):.4f}", flush=True)

    predicted = np.concatenate([np.asarray(predict(params, stats, data.x_test[i : i + 250])) for i in (0, 250)])
    truth = data.y_test.astype(bool)
    brightest = data.x_test[..., 0] > 0.8  # the object's grey level is U(0.85, 1)
    print(f"test IoU (conv autoencoder, {args.decoder} decoder): {iou(predicted, truth):.4f}")
    print(f"test IoU (brightness threshold 0.8, baseline): {iou(brightest, truth):.4f}")
    print(f"time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
