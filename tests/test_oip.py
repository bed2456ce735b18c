"""Stock tritonclient calls the Open Inference Protocol facade from another process.

tritonclient registers its own ``inference.*`` protobuf symbols, which clash with the facade's
in one descriptor pool, so the client runs in a subprocess (and the server in this one).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import sigmaserve

CLIENT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tritonclient.grpc as tc

    url = sys.argv[1]
    c = tc.InferenceServerClient(url)
    out = {"live": c.is_server_live(), "ready": c.is_server_ready(),
           "model_ready": c.is_model_ready("init_latents")}
    meta = c.get_model_metadata("init_latents")
    out["meta_outputs"] = [o.name for o in meta.outputs]
    shape = tc.InferInput("SHAPE", [4], "INT64")
    shape.set_data_from_numpy(np.array([2, 4, 8, 8], dtype=np.int64))
    seed = tc.InferInput("SEED", [2], "INT64")
    seed.set_data_from_numpy(np.array([42, 7], dtype=np.int64))
    r = c.infer("init_latents", [shape, seed], parameters={"dtype": "float16"})
    lat = r.as_numpy("LATENTS")
    out["latents"] = lat.tobytes().hex()
    out["latents_dtype"] = str(lat.dtype)
    out["latents_shape"] = list(lat.shape)
    steps = tc.InferInput("NUM_STEPS", [1], "INT64")
    steps.set_data_from_numpy(np.array([25], dtype=np.int64))
    r = c.infer("schedule", [steps], parameters={"scheduler": "EulerDiscreteScheduler"})
    out["sigmas"] = r.as_numpy("SIGMAS").tolist()
    out["init_noise_sigma"] = float(r.as_numpy("INIT_NOISE_SIGMA")[0])
    try:
        c.infer("nope", [steps])
    except tc.InferenceServerException as exc:
        out["unknown_model"] = exc.status()
    bad = tc.InferInput("SHAPE", [4], "INT64")
    bad.set_data_from_numpy(np.array([1, 4, 0, 8], dtype=np.int64))
    try:
        c.infer("init_latents", [bad, seed])
    except tc.InferenceServerException as exc:
        out["bad_shape"] = exc.status()
    print(json.dumps(out))
    """
)


def test_tritonclient_calls_the_facade(target):
    proc = subprocess.run(
        [sys.executable, "-c", CLIENT, target], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["live"] and out["ready"] and out["model_ready"]
    assert out["meta_outputs"] == ["LATENTS", "INIT_NOISE_SIGMA"]
    expected = sigmaserve.sample_init_latents(shape=(2, 4, 8, 8), seeds=[42, 7], dtype="float16")
    assert out["latents_dtype"] == "float16"
    assert out["latents_shape"] == [2, 4, 8, 8]
    assert bytes.fromhex(out["latents"]) == expected.array.tobytes()
    schedule = sigmaserve.get_schedule("EulerDiscreteScheduler", 25)
    np.testing.assert_array_equal(np.array(out["sigmas"], dtype=np.float32), schedule.sigmas)
    assert out["init_noise_sigma"] == pytest.approx(schedule.init_noise_sigma)
    assert out["unknown_model"] == "StatusCode.NOT_FOUND"
    assert out["bad_shape"] == "StatusCode.INVALID_ARGUMENT"
