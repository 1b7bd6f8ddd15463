"""Any Hugging Face captioning checkpoint: VisionEncoderDecoder, BLIP or GIT, from a folder or
a hub id (the local Hugging Face cache only, unless ``POLYMODAL_ALLOW_DOWNLOAD=1``).

Pixels are prepared with Pillow and NumPy from the folder's ``preprocessor_config.json`` by the
same recipe the image encoders use (transformers' image processors want torchvision by
default); the caption comes from ``model.generate`` and the folder's tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polymodal.describe.captions.base import CaptionerInfo
from polymodal.errors import ConfigError, InputError

# model_type in config.json -> the transformers class that generates captions from pixels.
MODEL_CLASSES = {
    "vision-encoder-decoder": "VisionEncoderDecoderModel",
    "blip": "BlipForConditionalGeneration",
    "git": "GitForCausalLM",
}


class HFCaptioner:
    """Captions from a transformers image-to-text model (greedy or beam ``generate``)."""

    def __init__(
        self,
        folder: str | Path,
        *,
        name: str | None = None,
        max_new_tokens: int = 30,
        num_beams: int = 3,
        batch_size: int = 8,
    ) -> None:
        import transformers
        from transformers import AutoTokenizer

        from polymodal.encoders.hf_common import load_model, quiet_transformers, read_json
        from polymodal.encoders.hf_image import pixel_recipe

        root = Path(folder).expanduser()
        config = read_json(root / "config.json") if (root / "config.json").is_file() else None
        if not isinstance(config, dict):
            raise ConfigError(f"{root} is not a Hugging Face checkpoint: it has no config.json")
        model_type = str(config.get("model_type", ""))
        if model_type not in MODEL_CLASSES:
            raise ConfigError(
                f"{root}: model_type {model_type!r} is not a captioning model polymodal loads "
                f"({', '.join(MODEL_CLASSES)})"
            )
        pre = root / "preprocessor_config.json"
        if not pre.is_file():
            raise ConfigError(f"{root} has no preprocessor_config.json: image size unknown")
        pre_config = read_json(pre)
        # BLIP and GIT processors nest the image settings under "image_processor".
        pre_config = pre_config.get("image_processor", pre_config)
        self.recipe = pixel_recipe(pre_config, str(pre))
        self.model, _ = load_model(getattr(transformers, MODEL_CLASSES[model_type]), root)
        try:
            with quiet_transformers():
                self.tokenizer = AutoTokenizer.from_pretrained(str(root), local_files_only=True)
        except (OSError, ValueError, KeyError) as err:
            raise ConfigError(f"{root}: cannot load its tokenizer: {err}") from err
        self.model_type = model_type
        self.max_new_tokens = max_new_tokens
        self.num_beams = num_beams
        self.batch_size = batch_size
        self.info = CaptionerInfo(
            name=name or str(root),
            kind="huggingface",
            source=str(root),
            description=f"{MODEL_CLASSES[model_type]} (beam {num_beams})",
        )

    def pixels(self, paths: Sequence[str | Path], start: int = 0) -> torch.Tensor:
        """(N, 3, H, W) model input; a bad file raises InputError naming it."""
        from polymodal.data.readers.image import read_image

        out = []
        for i, path in enumerate(paths):
            try:
                image = read_image(path, draft_size=self.recipe.draft_size)
            except InputError as err:
                raise err.at(row=start + i) from None
            out.append(self.recipe.apply(image))
        return torch.from_numpy(np.stack(out).astype(np.float32))

    @torch.no_grad()
    def caption(self, paths: Sequence[str | Path]) -> list[str]:
        out: list[str] = []
        for start in range(0, len(paths), self.batch_size):
            pixels = self.pixels(paths[start : start + self.batch_size], start)
            ids = self.model.generate(pixel_values=pixels, **self._generate_kwargs())
            texts = self.tokenizer.batch_decode(ids, skip_special_tokens=True)
            out.extend(" ".join(t.split()) for t in texts)
        return out

    def _generate_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "num_beams": self.num_beams,
            "do_sample": False,
        }
        if self.model_type == "vision-encoder-decoder" and self.tokenizer.pad_token_id is not None:
            kwargs.setdefault("pad_token_id", self.tokenizer.pad_token_id)
        return kwargs
