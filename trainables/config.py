"""The one typed configuration of an InfoGAN run.

Every hyperparameter has exactly one name, here. Search spaces, the CLI (`--set field=value`),
checkpoints and the analysis all use these names. `InfoGANConfig.from_dict` refuses unknown keys
and invalid values with a one-line `BadInputError` naming the field and its allowed range.

Kinds of model reachable from this config (`InfoGANConfig.model_kind`; Chen et al. 2016,
https://arxiv.org/abs/1606.03657, and the follow-up ablations):
- InfoGAN: noise_dim > 0, codes > 0, lambda_info > 0 (the default: 62 noise, 1 x 10 cat, 2 cont).
- vanilla GAN: n_cat_codes = n_cont_codes = 0.
- GAN with codes: lambda_info = 0; Q still trains on detached features so I(c; G) is measured.
- code-only: noise_dim = 0. Categorical-only: noise_dim = 0 and n_cont_codes = 0.
- Bidirectional-InfoGAN: bidirectional = True (an encoder E(x) -> (z, c), D judges (x, latent)).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import typing
from dataclasses import dataclass, field
from typing import Any

from trainables.errors import BadInputError

MAX_BATCH_SIZE = 65_536  # far above any GAN's batch (BigGAN's is 2,048): a larger one is a typo
DATASETS = (
    "mnist",
    "fashion-mnist",
    "svhn",
    "celeba",
    "basicprop-line",
    "basicprop-rects",
    "sprites",
    "folder",  # an image folder or .npz of unlabelled images at data_root
)


def _f(default: Any, help: str, **extra: Any) -> Any:  # `help`: argparse's name for it
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True)
class InfoGANConfig:
    # --- data ---
    dataset: str = _f("mnist", "dataset name", choices=DATASETS)
    data_root: str = _f("", "folder holding datasets (torchvision layout) or the image folder/.npz; '' = ./data")
    image_size: int = _f(0, "resize images to this side (0 = the dataset's native size; sprites: 64, 32 or 16)")
    basicprop_noise: bool = _f(False, "basicprop: the seed's noise trick (foreground U(150,240), background U(0,60))")
    # --- latent input ---
    noise_dim: int = _f(62, "dimension of the incompressible noise z (0 = codes only)", min=0)
    noise_dist: str = _f(
        "uniform",
        "distribution of z: uniform U(-1, 1) (the official code) or normal N(0, 1): "
        "on MNIST, N(0, 1) noise drowned the one-hot code (the digit never followed it)",
        choices=("uniform", "normal"),
    )
    n_cat_codes: int = _f(1, "number of categorical codes", min=0)
    cat_dim: int = _f(10, "categories per categorical code (K)", min=2)
    n_cont_codes: int = _f(2, "number of continuous codes ~ U(-1, 1)", min=0)
    # --- information term ---
    lambda_info: float = _f(1.0, "weight lambda of the mutual-information term L_I (0 = codes ignored by G)", min=0.0)
    cont_weight: float = _f(1.0, "continuous/categorical loss ratio: L_I = CE_cat + cont_weight * NLL_cont", min=0.0)
    q_fixed_std: bool = _f(
        True,
        "true: Q's std for the continuous codes is fixed to 1 (the official code); false: Q learns a log-std "
        "too (the paper's appendix; on MNIST its NLL's 1/std^2 gradients swamped G's and samples turned to noise)",
    )
    q_update: str = _f(
        "d",
        "which optimiser trains Q's head: d (D's optimiser at lr_d, as the official code, whose "
        "Q layers live in D's scope) or g (G's Adam at lr_g)",
        choices=("d", "g"),
    )
    bidirectional: bool = _f(False, "Bidirectional-InfoGAN: encoder E(x) -> (z, c); D judges (image, latent) pairs")
    # --- discriminator input noise ---
    instance_noise: float = _f(
        0.0, "std of Gaussian noise added to D's real and fake inputs (data in [-1, 1])", min=0.0
    )
    instance_noise_steps: int = _f(0, "anneal instance noise linearly to 0 over this many steps (0 = constant)", min=0)
    # --- networks (their family follows the image side: 28 -> the paper's MNIST nets, 32/64 -> DCGAN-style) ---
    width: float = _f(1.0, "channel/unit width multiplier (e.g. 0.25 for quick CPU runs)", min=0.05, max=8.0)
    # --- optimisation ---
    batch_size: int = _f(64, "batch size", min=2, max=MAX_BATCH_SIZE)
    steps: int = _f(5000, "training steps (one D update and one G+Q update each)", min=1)
    d_optimizer: str = _f("adam", "optimiser of D (and the shared trunk)", choices=("adam", "sgd"))
    sgd_momentum: float = _f(0.9, "momentum of D's SGD (d_optimizer=sgd)", min=0.0, max=1.0, exclusive_max=True)
    lr_d: float = _f(2e-4, "learning rate of D", min=0.0, exclusive_min=True)
    lr_g: float = _f(
        1e-3,
        "learning rate of G's Adam: G, E for Bidirectional-InfoGAN, and Q's head with q_update=g",
        min=0.0,
        exclusive_min=True,
    )
    beta1: float = _f(0.5, "Adam beta1 (D and G)", min=0.0, max=1.0, exclusive_max=True)
    beta2: float = _f(0.999, "Adam beta2 (D and G)", min=0.0, max=1.0, exclusive_max=True)
    precision: str = _f(
        "fp32",
        "fp32, or bf16 autocast of convolutions/matmuls (CUDA; CPUs with AVX512-BF16/AMX)",
        choices=("fp32", "bf16"),
    )
    # --- bookkeeping ---
    seed: int = _f(0, "random seed (model init, latent sampling, data order, instance noise)", min=0)
    report_every: int = _f(100, "report metrics every this many steps", min=1)

    # ------------------------------------------------------------------ derived values
    @property
    def code_dim(self) -> int:
        """Width of the code part of G's input: one-hot categorical codes + continuous codes."""
        return self.n_cat_codes * self.cat_dim + self.n_cont_codes

    @property
    def latent_dim(self) -> int:
        """Width of G's input (z, one-hot c_cat, c_cont)."""
        return self.noise_dim + self.code_dim

    @property
    def has_codes(self) -> bool:
        return self.n_cat_codes + self.n_cont_codes > 0

    @property
    def model_kind(self) -> str:
        """What kind of model this config trains, derived from its fields (for run names, reports and
        the parquet column `model_kind`). Not a search space's `variant` label, which names a row of
        a `variant_grid` and can disagree with it (seed-ablation's `infogan` row with
        `--set noise_dim=0` trains an `infogan-codes-only` model)."""
        if self.bidirectional:
            return "bi-infogan"
        if not self.has_codes:
            return "gan"
        if self.lambda_info == 0:
            return "gan+codes"
        if self.noise_dim == 0:
            return "infogan-cat-only" if self.n_cont_codes == 0 else "infogan-codes-only"
        return "infogan"

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check_value(f.name, getattr(self, f.name))
        if self.noise_dim == 0 and not self.has_codes:
            raise BadInputError(
                "no latent input: noise_dim=0 with no codes; set noise_dim > 0 or n_cat_codes/n_cont_codes > 0"
            )
        if self.bidirectional and not self.has_codes:
            raise BadInputError("bidirectional=True needs codes: set n_cat_codes or n_cont_codes > 0")
        if self.dataset == "sprites" and self.image_size not in (0, 16, 32, 64):
            raise BadInputError(f"image_size={self.image_size} for sprites: use 0 (64), 16, 32 or 64")
        if self.image_size not in (0, 28, 32, 64) and self.dataset != "sprites":
            raise BadInputError(f"image_size={self.image_size}: use 0 (native), 28, 32 or 64")

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def field_type(cls, name: str) -> type:
        """The Python type (bool, int, float or str) of a field."""
        check_field_name(name)
        return _field_types()[name]

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, base: InfoGANConfig | None = None) -> InfoGANConfig:
        """Build a config from `values` (over `base` or the defaults), coercing and checking every key."""
        out = (base or cls()).to_dict()
        for name, value in values.items():
            out[name] = coerce_value(name, value)
        return cls(**out)

    def replace(self, **changes: Any) -> InfoGANConfig:
        return InfoGANConfig.from_dict(changes, base=self)


@functools.cache
def _fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(InfoGANConfig)}


@functools.cache
def _field_types() -> dict[str, type]:
    return typing.get_type_hints(InfoGANConfig)  # resolved once: from_dict is called per trial


def check_field_name(name: str) -> None:
    """Raise BadInputError for a name that is not a config field, suggesting the closest ones."""
    names = InfoGANConfig.field_names()
    if name == "model_kind":
        raise BadInputError(
            "model_kind is derived from the other fields, not set: n_cat_codes=0 n_cont_codes=0 (gan), "
            "lambda_info=0 (gan+codes), noise_dim=0 (codes only), bidirectional=true (bi-infogan)"
        )
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"did you mean {' or '.join(close)}?" if close else "see `infogan-study train --help-config`"
        raise BadInputError(f"unknown config field {name!r}; {hint}")


def check_value(name: str, value: Any) -> None:
    """Raise BadInputError unless `value` (of the field's type) is among the field's choices and
    within its range: the checks of one field alone (the config's own checks add the cross-field ones)."""
    meta = _fields()[name].metadata
    if "choices" in meta and value not in meta["choices"]:
        raise BadInputError(f"{name}={value!r} is not allowed; choose one of: {', '.join(meta['choices'])}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise BadInputError(f"{name}={value} must be a finite number")
        lo, hi = meta.get("min"), meta.get("max")
        if lo is not None and (value < lo or (meta.get("exclusive_min") and value == lo)):
            op = ">" if meta.get("exclusive_min") else ">="
            raise BadInputError(f"{name}={value} is out of range: {name} must be {op} {lo}")
        if hi is not None and (value > hi or (meta.get("exclusive_max") and value == hi)):
            op = "<" if meta.get("exclusive_max") else "<="
            raise BadInputError(f"{name}={value} is out of range: {name} must be {op} {hi}")


def coerce_value(name: str, value: Any) -> Any:
    """Convert `value` (a Python value or the string from `--set name=value`) to the field's type."""
    typ = InfoGANConfig.field_type(name)
    if isinstance(value, str) and typ is not str:
        text = value.strip()
        try:
            if typ is bool:
                low = text.lower()
                if low not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return low in ("true", "1", "yes")
            if typ is int:
                return int(text)
            if typ is float:
                return float(text)
        except ValueError:
            raise BadInputError(f"{name}={value!r} is not a valid {typ.__name__}") from None
    if typ is bool:
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return bool(value)
    elif typ is int:
        whole = isinstance(value, int) or (hasattr(value, "__index__") and not isinstance(value, float))
        if not isinstance(value, bool) and (whole or (isinstance(value, float) and value.is_integer())):
            return int(value)
    elif typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "if":  # numpy scalars
            return float(value)
    elif typ is str and isinstance(value, str):
        return value
    raise BadInputError(f"{name}={value!r} has the wrong type: expected {typ.__name__}")


def parse_set_options(items: list[str]) -> dict[str, Any]:
    """Parse repeated `--set field=value` strings into a dict of typed values."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise BadInputError(f"--set {item!r}: expected field=value, e.g. --set lambda_info=0.5")
        name, value = item.split("=", 1)
        name = name.strip().replace("-", "_")
        out[name] = coerce_value(name, value)
    return out


def describe_fields() -> str:
    """One line per field: name, type, default, help (for `--help-config` and the README), and a
    last line on `model_kind`, which is derived, not set."""
    lines = []
    for f in dataclasses.fields(InfoGANConfig):
        typ = InfoGANConfig.field_type(f.name).__name__
        lines.append(f"  {f.name:<22} {typ:<6} default {f.default!r:<10} {f.metadata['help']}")
    lines.append(
        "model_kind (gan, gan+codes, infogan, infogan-codes-only, infogan-cat-only, bi-infogan) is derived from "
        "these fields, not a field: it names runs and the parquet column"
    )
    return "\n".join(lines)
