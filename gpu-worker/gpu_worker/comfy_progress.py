"""Sampling progress for a whole graph from ComfyUI's per-node `progress` events.

ComfyUI (v0.8.0, main.py `hijack_progress`) sends `{"type": "progress", "data": {"value", "max", "prompt_id",
"node"}}` once per sampler step, where `max` is that node's own step count: a KSamplerAdvanced that runs steps 0-2 of
4 reports 1/2 and 2/2 (comfy/samplers.py slices the sigmas), and the low-noise expert after it starts again at 1/2;
the chunks of a sound-to-video graph are one KSampler each. So the steps of the whole job are counted up front from
the graph, and each event only moves its node's count: the percent rises through every expert and chunk and reaches
the end once, at the last step of the last sampler.
"""

from __future__ import annotations

SAMPLERS = ("KSampler", "KSamplerAdvanced")


def expected_steps(node: dict) -> int:
    """The steps a sampler node will report, from its inputs as ComfyUI computes them."""
    inputs = node["inputs"]
    steps = int(inputs.get("steps", 0))
    if node["class_type"] == "KSamplerAdvanced":
        start = int(inputs.get("start_at_step", 0))
        end = min(int(inputs.get("end_at_step", steps)), steps)
        return max(0, end - start)
    return steps


class SamplingProgress:
    def __init__(self, workflow: dict):
        self.expected = {nid: expected_steps(node) for nid, node in workflow.items() if node["class_type"] in SAMPLERS}
        self.done: dict[str, int] = {}

    def update(self, node: str, value: int, maximum: int) -> tuple[int, int] | None:
        """(steps done, steps in all) after one `progress` event; None for a node that is not a sampler (a VAE
        decode or a model load also report progress)."""
        if node not in self.expected:
            return None
        # A sampler ComfyUI counts differently than foreseen (a custom scheduler) is trusted from its own `max`.
        self.expected[node] = max(self.expected[node], maximum)
        self.done[node] = max(self.done.get(node, 0), min(value, maximum))
        return sum(self.done.values()), sum(self.expected.values())
