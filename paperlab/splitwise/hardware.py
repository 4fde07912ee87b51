"""Machines (DGX SKUs), LLMs and KV-cache links, with the numbers the paper and reference use.

Memory is in bytes, bandwidth in bytes/s, cost and power in the paper's relative units
(per machine: DGX-A100 cost 2.21 power 24.8; DGX-H100 cost 4.76 power 44; a power-capped
DGX-H100 token machine draws 70% of the H100's power).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True)
class LLM:
    """A served model. KV bytes per token = 2 (K and V) · layers · hidden · dtype bytes."""

    name: str
    num_layers: int
    hidden_size: int
    weight_bytes: int
    params: float
    dtype_bytes: int = 2

    @property
    def kv_bytes_per_token(self) -> int:
        return 2 * self.num_layers * self.hidden_size * self.dtype_bytes


BLOOM_176B = LLM("bloom-176b", num_layers=70, hidden_size=14336, weight_bytes=329_000_000_000,
                 params=176e9)
LLAMA2_70B = LLM("llama2-70b", num_layers=80, hidden_size=8192, weight_bytes=135_000_000_000,
                 params=70e9)


@dataclass(frozen=True)
class MachineSKU:
    """One DGX machine: ``gpus`` GPUs of ``gpu_memory`` bytes, running one model instance.

    Attributes:
        name: e.g. ``dgx-h100``.
        hardware: the profile's hardware key (``a100-80gb``, ``h100-80gb``, ``h100-80gb-pcap``).
        cost, power: relative cost and provisioned power per machine.
        peak_flops, mem_bw: per-GPU dense bf16 FLOP/s and HBM bytes/s (for the roofline model).
    """

    name: str
    hardware: str
    gpus: int
    gpu_memory: int
    cost: float
    power: float
    peak_flops: float
    mem_bw: float

    @property
    def memory(self) -> int:
        return self.gpus * self.gpu_memory


DGX_A100 = MachineSKU("dgx-a100", "a100-80gb", 8, 80 * GIB, cost=2.21, power=24.8,
                      peak_flops=312e12, mem_bw=2.039e12)
DGX_H100 = MachineSKU("dgx-h100", "h100-80gb", 8, 80 * GIB, cost=4.76, power=44.0,
                      peak_flops=989e12, mem_bw=3.35e12)
DGX_H100_PCAP = MachineSKU("dgx-h100-pcap", "h100-80gb-pcap", 8, 80 * GIB, cost=4.76,
                           power=44.0 * 0.7, peak_flops=989e12, mem_bw=3.35e12)
SKUS = {s.name: s for s in (DGX_A100, DGX_H100, DGX_H100_PCAP)}


@dataclass(frozen=True)
class Link:
    """The KV-cache transfer path between a prompt and a token machine.

    Attributes:
        bandwidth: bytes/s.
        latency_s: fixed cost per transfer (set-up, first byte).
        mode: ``"serialized"`` (the whole cache moves after the prompt ends, as the reference's
            default schedulers), ``"layerwise"`` (layer i ships while layer i+1 computes; only
            what cannot hide behind the prefill is exposed; prompts under
            ``layerwise_min_tokens`` are sent serialized, as the paper does) or
            ``"reference_overlap"`` (the reference's approximation: 10× bandwidth).
        layerwise_min_tokens: prompt size below which layer-wise transfer is not used.
    """

    bandwidth: float
    latency_s: float = 0.0
    mode: str = "serialized"
    layerwise_min_tokens: int = 512

    def __post_init__(self) -> None:
        if self.mode not in ("serialized", "layerwise", "reference_overlap"):
            raise ValueError(f"unknown KV transfer mode {self.mode!r}")
        if not (math.isfinite(self.bandwidth) and self.bandwidth > 0):
            raise ValueError(f"link bandwidth must be a positive finite number of bytes/s, got "
                             f"{self.bandwidth}")
        if not (math.isfinite(self.latency_s) and self.latency_s >= 0):
            raise ValueError(f"link latency_s must be a non-negative finite number of seconds, "
                             f"got {self.latency_s}")

    def transfer_time(self, nbytes: float, prompt_tokens: int, prompt_time_s: float,
                      num_layers: int) -> float:
        """Seconds from prompt end until the token machine holds the whole KV cache."""
        serial = nbytes / self.bandwidth
        if self.mode == "reference_overlap":
            return self.latency_s + serial / 10
        if self.mode == "serialized" or prompt_tokens < self.layerwise_min_tokens:
            return self.latency_s + serial
        # layer-wise: the last layer's share is always exposed; the rest hides behind compute
        per_layer = serial / num_layers
        hidden = prompt_time_s * (num_layers - 1) / num_layers
        return self.latency_s + max(per_layer, serial - hidden)


INFINIBAND = Link(bandwidth=200 * GIB)  # the reference's transfer_bandwidth: 200 GiB/s
ETHERNET = Link(bandwidth=12.5e9, latency_s=50e-6)  # 100 Gb/s
