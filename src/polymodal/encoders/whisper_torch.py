"""The Whisper audio encoder in plain torch, loadable from a CTranslate2 ``model.bin``.

Same computation as OpenAI's ``AudioEncoder``: conv (k3) -> GELU -> conv (k3, stride 2) -> GELU ->
+ positions -> pre-LayerNorm transformer blocks -> final LayerNorm. One difference keeps short clips
cheap: positions are sliced to the input length, where Whisper itself always sees 3000 frames.
As in CTranslate2, there is no attention mask: padded frames are attended to, and whoever pads
chooses what they hold (log-mel of silence works best, see ``audio_whisper``).

Also the torch side of :mod:`polymodal.encoders.audio_whisper` (:class:`WhisperModule`), kept
here so that building that encoder and reading its ``info`` never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from polymodal.encoders.audio_whisper import MAX_POSITIONS, WINDOW_FRAMES
from polymodal.encoders.ct2_weights import dequantize, read_ct2_variables
from polymodal.encoders.module import EncoderModule
from polymodal.errors import ConfigError


def sinusoids(length: int, channels: int) -> torch.Tensor:
    """Whisper's sinusoidal position table (length, channels): sines then cosines."""
    inc = math.log(10000) / (channels // 2 - 1)
    inv = torch.exp(-inc * torch.arange(channels // 2, dtype=torch.float32))
    t = torch.arange(length, dtype=torch.float32)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused q/k/v projection (as CTranslate2 stores it)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn_ln = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads)
        self.mlp_ln = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_ln(x))
        return x + self.mlp(self.mlp_ln(x))


class WhisperEncoderNet(nn.Module):
    """Log-mel (B, n_mels, frames) -> states (B, ceil(frames / 2), width), for one 30 s window."""

    def __init__(self, *, n_mels: int, width: int, heads: int, layers: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, width, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(width, width, kernel_size=3, stride=2, padding=1)
        # A buffer, not a parameter: Whisper's encoder positions are fixed.
        self.register_buffer("positions", sinusoids(MAX_POSITIONS, width), persistent=False)
        self.layers = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln_post = nn.LayerNorm(width)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        if x.shape[1] > MAX_POSITIONS:
            raise ValueError(f"{x.shape[1]} states exceed one {MAX_POSITIONS}-state window")
        x = x + self.positions[: x.shape[1]].to(x.dtype)
        for layer in self.layers:
            x = layer(x)
        return self.ln_post(x)


def load_ct2_whisper_encoder(model_dir: str | Path) -> WhisperEncoderNet:
    """A :class:`WhisperEncoderNet` holding the encoder weights of a CTranslate2 Whisper model."""
    model_bin = Path(model_dir) / "model.bin"
    if not model_bin.is_file():
        raise ConfigError(f"{model_dir}: no model.bin (expected a CTranslate2 Whisper folder)")
    v = read_ct2_variables(model_bin, prefix="encoder/")
    if "encoder/conv1/weight" not in v:
        raise ConfigError(f"{model_bin}: no Whisper encoder variables inside")
    width, n_mels, _ = v["encoder/conv1/weight"].shape
    layers = sum(1 for k in v if k.endswith("/self_attention/linear_0/weight"))
    heads = int(v["encoder/num_heads"])
    net = WhisperEncoderNet(n_mels=n_mels, width=width, heads=heads, layers=layers)
    net.load_state_dict(_state_dict(v, layers), strict=True)
    net.positions.copy_(torch.from_numpy(dequantize(v, "encoder/position_encodings/encodings")))
    return net.eval()


def _state_dict(v: dict[str, np.ndarray], layers: int) -> dict[str, torch.Tensor]:
    # CTranslate2 name -> torch name; "weight"/"bias" for linear/conv, "gamma"/"beta" for LayerNorm.
    names = {"conv1": "encoder/conv1", "conv2": "encoder/conv2"}
    norms = {"ln_post": "encoder/layer_norm"}
    for i in range(layers):
        src, dst = f"encoder/layer_{i}", f"layers.{i}"
        names |= {
            f"{dst}.attn.qkv": f"{src}/self_attention/linear_0",
            f"{dst}.attn.out": f"{src}/self_attention/linear_1",
            f"{dst}.mlp.0": f"{src}/ffn/linear_0",
            f"{dst}.mlp.2": f"{src}/ffn/linear_1",
        }
        norms |= {
            f"{dst}.attn_ln": f"{src}/self_attention/layer_norm",
            f"{dst}.mlp_ln": f"{src}/ffn/layer_norm",
        }
    out: dict[str, torch.Tensor] = {}
    for dst, src in names.items():
        out[f"{dst}.weight"] = torch.from_numpy(dequantize(v, f"{src}/weight"))
        out[f"{dst}.bias"] = torch.from_numpy(dequantize(v, f"{src}/bias"))
    for dst, src in norms.items():
        out[f"{dst}.weight"] = torch.from_numpy(dequantize(v, f"{src}/gamma"))
        out[f"{dst}.bias"] = torch.from_numpy(dequantize(v, f"{src}/beta"))
    return out


def tiny_whisper_net(*, n_mels: int, width: int) -> WhisperEncoderNet:
    """A random 2-layer encoder, the same every time."""
    # Seeded without touching the caller's global RNG, so tiny encoders are reproducible.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return WhisperEncoderNet(n_mels=n_mels, width=width, heads=4, layers=2)


class WhisperModule(EncoderModule):
    """Torch Whisper encoder as ``forward(batch) -> (tokens, token_mask, pooled)``.

    ``batch["mel"]`` is (B, n_mels, frames), padded by ``WhisperAudioEncoder.collate``; inputs
    longer than one window are split into 30 s windows whose states are concatenated.
    ``pooled`` is the mean of the real states.
    """

    def __init__(self, net: WhisperEncoderNet) -> None:
        super().__init__()
        self.net = net

    def forward(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mel, mask = batch["mel"], batch["state_mask"]
        b, n_mels, frames = mel.shape
        if frames > WINDOW_FRAMES:
            if frames % WINDOW_FRAMES:
                raise ValueError(f"{frames} frames is not a whole number of 30 s windows")
            windows = frames // WINDOW_FRAMES
            mel = mel.view(b, n_mels, windows, WINDOW_FRAMES).permute(0, 2, 1, 3)
            states = self.net(mel.reshape(b * windows, n_mels, WINDOW_FRAMES))
            states = states.reshape(b, windows * states.shape[1], -1)
        else:
            states = self.net(mel)
        weights = mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return states, mask, pooled

    def blocks(self) -> list[Any]:
        """The transformer blocks, bottom to top."""
        return list(self.net.layers)


def torch_states(module: Callable[[], WhisperModule]) -> Callable[[np.ndarray], np.ndarray]:
    """Frozen states of log-mels (B, n_mels, frames) computed by ``module()``'s network."""

    def run(mel: np.ndarray) -> np.ndarray:
        net = module().net
        with torch.inference_mode():
            return net(torch.from_numpy(mel)).float().numpy()

    return run
