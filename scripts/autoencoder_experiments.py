"""The seeds' uses of dense autoencoders, each measured, as Markdown tables (README,
"Autoencoders"). kang-lecture4, "Auto-Encoder" and "Layer-wise training".

    python scripts/autoencoder_experiments.py            # the documented run (~4 min, 2 CPU cores)
    python scripts/autoencoder_experiments.py --quick    # a smoke run (what the tests execute)

1. Denoising (digits): a denoising autoencoder's error against the clean image, of the
   noisy input and of its reconstruction, over noise levels (one vmap'd call).
2. VAE (digits): the test ELBO (a one-sample estimate, nats per image) by latent size.
3. Layer-wise pretraining (digits): a sigmoid MLP fine-tuned from stacked autoencoders
   against the same MLP from random weights, the same fine-tuning budget, mean over seeds.
4. Features for a classifier (breast cancer, the seed's bioinformatics example): logistic
   regression on the raw features, on an autoencoder's code and on PCA's of the same size.
5. Novelty detection (digits, the seed's "2" vs "5"): an autoencoder trained on 2s alone;
   the reconstruction error tells test 2s from 5s (ROC AUC) and from every other digit.
"""

from __future__ import annotations

import argparse
import dataclasses

import jax
import numpy as np

import zoo
from zoo.data import load_dataset
from zoo.models.autoencoders.dense import denoising_curve
from zoo.train.pretrain import encode, pretrain_layerwise, stacked_variables


def roc_auc(negative: np.ndarray, positive: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting one half (Mann-Whitney)."""
    greater = (positive[:, None] > negative[None, :]).mean()
    ties = (positive[:, None] == negative[None, :]).mean()
    return float(greater + 0.5 * ties)


def reconstruction_errors(result, x: np.ndarray) -> np.ndarray:
    """Per-example mean squared error of ``result``'s reconstruction of ``x``."""
    out = result.model.apply(result.variables, x)
    values = out["reconstruction"] if "reconstruction" in out else jax.nn.sigmoid(out["reconstruction_logits"])
    return np.mean((np.asarray(values) - x).reshape(len(x), -1) ** 2, -1)


def table(header: list[str], rows: list[list]) -> str:
    def cell(v):
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])


def denoising(epochs: int, **fit_kwargs) -> str:
    data = load_dataset("digits")
    result = zoo.fit("denoising_autoencoder", data, epochs=epochs, learning_rate=3e-3, progress=False, **fit_kwargs)
    levels = [0.1, 0.2, 0.3, 0.5]
    curve = denoising_curve(result.model, result.variables, data.x_test, levels, jax.random.PRNGKey(0))
    rows = []
    for i, level in enumerate(levels):
        noisy, recon = float(curve["noisy_error"][i]), float(curve["reconstruction_error"][i])
        rows.append([f"{level:g}", noisy, recon, f"{1 - recon / noisy:.0%}"])
    return table(["noise sigma", "noisy input MSE", "reconstruction MSE", "error removed"], rows)


def vae(epochs: int, latent_sizes=(2, 8), **fit_kwargs) -> str:
    data = load_dataset("digits")
    rows = []
    for latent in latent_sizes:
        r = zoo.fit(
            "vae",
            data,
            model_overrides={"latent_size": latent},
            epochs=epochs,
            learning_rate=3e-3,
            progress=False,
            **fit_kwargs,
        )
        m = r.test_metrics
        rows.append([latent, -m["loss"], m["kl"], m["reconstruction_error"]])
    return table(["latent size", "test ELBO (nats)", "KL", "reconstruction MSE"], rows)


def layerwise(pretrain_epochs: int, finetune_epochs: int, seeds: int, **fit_kwargs) -> str:
    data = load_dataset("digits")
    sizes = (48, 24)
    mlp = {"hidden_sizes": sizes, "activation": "sigmoid"}
    scores = {"pretrained": [], "random init": []}
    for seed in range(seeds):
        layers = [("autoencoder", {"hidden_sizes": (n,)}) for n in sizes]
        results = pretrain_layerwise(
            layers, data, epochs=pretrain_epochs, learning_rate=3e-3, seed=seed, progress=False, **fit_kwargs
        )
        init = stacked_variables(results, {"encoder_0": "hidden_{}"})
        for name, start in (("pretrained", init), ("random init", None)):
            r = zoo.fit(
                "mlp",
                data,
                model_overrides=mlp,
                initial_variables=start,
                epochs=finetune_epochs,
                seed=seed,
                progress=False,
                **fit_kwargs,
            )
            scores[name].append(r.test_metrics["accuracy"])
    rows = [[name, float(np.mean(v)), float(np.std(v))] for name, v in scores.items()]
    return table([f"sigmoid MLP {sizes}, {finetune_epochs} epochs", "test accuracy", "std over seeds"], rows)


def classifier_features(epochs: int, code: int = 8, **fit_kwargs) -> str:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    data = load_dataset("breast_cancer")
    ae = zoo.fit(
        "autoencoder",
        data,
        model_overrides={"hidden_sizes": (code,)},
        epochs=epochs,
        learning_rate=3e-3,
        progress=False,
        **fit_kwargs,
    )
    pca = PCA(code).fit(data.x_train)
    features = {
        "raw (30 features)": (data.x_train, data.x_test),
        f"autoencoder code ({code})": (encode(ae, data.x_train), encode(ae, data.x_test)),
        f"PCA ({code})": (pca.transform(data.x_train), pca.transform(data.x_test)),
    }
    rows = []
    for name, (train, test) in features.items():
        clf = LogisticRegression(max_iter=5000).fit(train, data.y_train)
        rows.append([name, float(clf.score(test, data.y_test))])
    return table(["logistic regression on", "test accuracy"], rows)


def novelty(epochs: int, **fit_kwargs) -> str:
    data = load_dataset("digits")
    only_twos = dataclasses.replace(
        data, name="digits:2", x_train=data.x_train[data.y_train == 2], y_train=data.y_train[data.y_train == 2]
    )
    r = zoo.fit(
        "autoencoder",
        only_twos,
        model_overrides={"hidden_sizes": (16,)},
        epochs=epochs,
        learning_rate=3e-3,
        progress=False,
        **fit_kwargs,
    )
    errors = reconstruction_errors(r, data.x_test)
    twos = errors[data.y_test == 2]
    rows = [
        [f"2 vs {d}", float(np.mean(errors[data.y_test == d])), roc_auc(twos, errors[data.y_test == d])]
        for d in (5, 0, 1, 8)
    ]
    rows.append(["2 vs all others", float(np.mean(errors[data.y_test != 2])), roc_auc(twos, errors[data.y_test != 2])])
    rows.insert(0, ["2 (trained on)", float(np.mean(twos)), "-"])
    return table(["test digits", "mean reconstruction MSE", "ROC AUC (error flags the novelty)"], rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args(argv)
    e = 1 if args.quick else None
    # The smoke run: one epoch of whole batches (one compiled train step per fit), one VAE.
    kw = {"drop_remainder": True} if args.quick else {}
    sections = [
        ("Denoising autoencoder on digits (30 epochs)", lambda: denoising(e or 30, **kw)),
        ("VAE on digits (60 epochs)", lambda: vae(e or 60, (2,) if args.quick else (2, 8), **kw)),
        ("Layer-wise pretraining on digits", lambda: layerwise(e or 20, e or 10, 1 if args.quick else 3, **kw)),
        ("Autoencoder features for a classifier (breast cancer)", lambda: classifier_features(e or 100, **kw)),
        ("Novelty detection (trained on 2s)", lambda: novelty(e or 100, **kw)),
    ]
    for title, run in sections:
        print(f"\n### {title}\n\n{run()}", flush=True)


if __name__ == "__main__":
    main()
