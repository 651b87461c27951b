"""Write the Kronos parity fixtures from the reference package (kronos-model-arch 0.1.0).

Run in a separate venv that has the reference installed with --no-deps (see tests/test_kronos_model.py):

    /work/kronos-ref-venv/bin/python tools/make_kronos_fixtures.py tests/fixtures/kronos

It builds the reference tokenizer and model at the reduced test shape with seeded random weights,
saves them in the published layout (config.json + model.safetensors), and records, for fixed
inputs: the tokenizer's ids and decoded values, the model's s1 logits and hidden states, the s2
logits given a coarse token, the reference's filtered sampling probabilities for fixed logits, and
decoded forecasts of the reference's autoregressive sampler (for a distribution test).
Only outputs of the reference are written; no reference code is copied.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from model.kronos import Kronos, KronosTokenizer, auto_regressive_inference, top_k_top_p_filtering
from safetensors.torch import save_file

TOKENIZER = dict(
    d_in=6,
    d_model=32,
    n_heads=2,
    ff_dim=64,
    n_enc_layers=2,
    n_dec_layers=2,
    ffn_dropout_p=0.0,
    attn_dropout_p=0.0,
    resid_dropout_p=0.0,
    s1_bits=4,
    s2_bits=4,
    beta=0.05,
    gamma0=1.0,
    gamma=1.1,
    zeta=0.05,
    group_size=4,
)
MODEL = dict(
    s1_bits=4,
    s2_bits=4,
    n_layers=2,
    d_model=32,
    n_heads=4,
    ff_dim=64,
    ffn_dropout_p=0.0,
    attn_dropout_p=0.0,
    resid_dropout_p=0.0,
    token_dropout_p=0.0,
    learn_te=True,
)


def save(module, config, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(folder / "model.safetensors"))


def stamps(length: int, start_day: int) -> torch.Tensor:
    days = torch.arange(start_day, start_day + length)
    return torch.stack(
        [torch.zeros(length), torch.zeros(length), days % 7, days % 28 + 1, days // 28 % 12 + 1], -1
    ).float()


def main(out: Path) -> None:
    torch.manual_seed(0)
    tokenizer = KronosTokenizer(**TOKENIZER).eval()
    model = Kronos(**MODEL).eval()
    with torch.no_grad():  # larger random weights than the init so tokens vary with the input
        for p in tokenizer.parameters():
            if p.dim() >= 2:
                p.normal_(0, 1.0 / p.shape[-1] ** 0.5)
    save(tokenizer, TOKENIZER, out / "tokenizer")
    save(model, MODEL, out / "model")

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(3, 24, 6)).astype(np.float32))
    stamp = torch.stack([stamps(24, 3 * i) for i in range(3)])
    arrays = {"x": x.numpy(), "stamp": stamp.numpy()}
    with torch.no_grad():
        s1, s2 = tokenizer.encode(x, half=True)
        arrays["s1"], arrays["s2"] = s1.numpy(), s2.numpy()
        arrays["decoded"] = tokenizer.decode([s1, s2], half=True).numpy()
        logits, context = model.decode_s1(s1, s2, stamp)
        arrays["s1_logits"], arrays["hidden"] = logits.numpy(), context.numpy()
        coarse = torch.tensor([[1], [5], [15]])
        arrays["coarse"] = coarse.numpy()
        arrays["s2_logits"] = model.decode_s2(context, coarse).numpy()
        # the reference's filtering: temperature, then top-k (which returns), else top-p
        raw = torch.from_numpy(rng.normal(scale=2.0, size=(4, 16)).astype(np.float32))
        arrays["raw_logits"] = raw.numpy()
        for name, top_k, top_p in (("topk", 5, 0.83), ("topp", 0, 0.83)):
            filtered = top_k_top_p_filtering(raw.clone() / 0.7, top_k=top_k, top_p=top_p)
            arrays[f"probs_{name}"] = F.softmax(filtered, dim=-1).numpy()
        arrays["probs_none"] = F.softmax(raw / 0.7, dim=-1).numpy()  # top_k 0, top_p 1: no filter
        # decoded forecasts of the reference sampler: 2 contexts x 400 paths, 3 steps, window 20
        torch.manual_seed(1)
        x_ctx = torch.clip(x[:2], -1.85, 1.85)
        y_stamp = torch.stack([stamps(3, 3 * i + 24) for i in range(2)])
        preds = []
        for path_block in range(4):  # 4 x 100 paths, each run returns the mean over its paths
            for _ in range(100):
                preds.append(
                    auto_regressive_inference(
                        tokenizer,
                        model,
                        x_ctx,
                        stamp[:2],
                        y_stamp,
                        max_context=20,
                        pred_len=3,
                        clip=1.85,
                        T=1.0,
                        top_k=0,
                        top_p=0.9,
                        sample_count=1,
                    )[:, -3:, :]
                )
        arrays["sampler_paths"] = np.stack(preds, axis=1)  # (2, 400, 3, 6): one path per run
        arrays["sampler_y_stamp"] = y_stamp.numpy()
    np.savez_compressed(out / "reference_outputs.npz", **arrays)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/kronos"))
