"""MLServer's scikit-learn runtime served like a heavier model: the MLServer analogue of iris-api's
INFERENCE_CONCURRENCY and INFERENCE_MIN_MS (packages/api/src/inference-slots.ts).

At most `concurrency` predictions run at once (the rest wait in arrival order on an asyncio semaphore), and each
holds its slot at least `min_ms`, waiting after the model answered. Capacity is then concurrency / min_ms whatever
the CPU, and a backlog queues inside MLServer, in front of its model, as in a real model server. The real model
still computes every answer. Set in a model's model-settings.json:

    "implementation": "shaped.ShapedSKLearnModel",
    "parameters": {"uri": ".../model.joblib", "extra": {"concurrency": 8, "min_ms": 200}}

with mlserver/ on PYTHONPATH (the test kit and the lab start it so). 0 turns either off.
"""

import asyncio

from mlserver.types import InferenceRequest, InferenceResponse
from mlserver_sklearn import SKLearnModel


class ShapedSKLearnModel(SKLearnModel):
    """SKLearnModel with execution slots and a minimum service time."""

    async def load(self) -> bool:
        extra = (self.settings.parameters.extra if self.settings.parameters else None) or {}
        concurrency = int(extra.get("concurrency", 0))
        self._min_seconds = float(extra.get("min_ms", 0)) / 1000
        self._slots = asyncio.Semaphore(concurrency) if concurrency > 0 else None
        return await super().load()

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        if self._slots is None:
            return await self._held(payload)
        async with self._slots:
            return await self._held(payload)

    async def _held(self, payload: InferenceRequest) -> InferenceResponse:
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await super().predict(payload)
        left = self._min_seconds - (loop.time() - started)
        if left > 0:
            await asyncio.sleep(left)
        return response
