"""The speech-embedding runtime: stream and clip features agree bit for bit, and both are
openWakeWord's documented pipeline (mel -> x/10 + 2 -> 76-frame windows, hop 8 -> 96-d)."""
from __future__ import annotations

import numpy as np
import pytest

from edge.core.errors import InputError
from edge.hearing import embedding as emb


@pytest.fixture(scope="module")
def features():
    return emb.SpeechEmbedding.from_package()


def speech_like(seconds: float, seed: int) -> np.ndarray:
    """Noise with a loud, pitched burst in the middle (a stand-in for a word)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    audio = rng.normal(0, 60, n)
    t = np.arange(n // 3) / 16000
    audio[n // 3: n // 3 + len(t)] += 6000 * np.sin(2 * np.pi * (180 + 300 * t) * t) * np.hanning(len(t))
    return np.clip(np.rint(audio), -32768, 32767).astype(np.int16)


def test_streamed_embeddings_equal_clip_embeddings_exactly(features):
    clip = speech_like(1.0, 0)
    views = emb.clip_embeddings(clip, features, frames=6, shift=1)
    assert views.shape == (3, 6, emb.EMBEDDING_DIM)
    audio = emb.clip_context(clip, 6 + 2)
    stream, rng, out, start = emb.EmbeddingStream(features), np.random.default_rng(1), [], 0
    while start < len(audio):  # odd chunk sizes: 1 sample to several steps at a time
        size = int(rng.integers(1, 3000))
        out.append(stream.process(audio[start:start + size].tobytes() if size % 2 else audio[start:start + size]))
        start += size
    streamed = np.concatenate(out)
    assert streamed.shape == (8, emb.EMBEDDING_DIM) and stream.pending_samples == 0
    for view in range(3):
        assert np.array_equal(streamed[view:view + 6], views[view])
    assert not np.array_equal(views[0], views[1])  # the views do see the clip at different times


def test_a_fresh_stream_needs_ten_steps_then_gives_one_embedding_per_step(features):
    stream = emb.EmbeddingStream(features)
    counts = [len(stream.process(np.zeros(emb.STEP_SAMPLES, np.int16))) for _ in range(12)]
    assert counts == [0] * 9 + [1, 1, 1]
    assert len(stream.process(np.zeros(emb.STEP_SAMPLES - 1, np.int16))) == 0 and stream.pending_samples == 1279
    stream.reset()
    assert stream.pending_samples == 0 and len(stream.process(np.zeros(5 * emb.STEP_SAMPLES, np.int16))) == 0
    assert emb.context_samples(1) == 10 * emb.STEP_SAMPLES


def test_embeddings_follow_the_documented_pipeline(features):
    """Reference: the mel model run once on the whole signal (its input is dynamic), x/10 + 2, and
    the embedding model on the 76 mel frames that end at each step boundary (openWakeWord's
    streaming windows). Stream mel frame i is whole-signal frame i - 3 (480 samples of history)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    paths = emb.packaged_model_paths()
    audio = speech_like(1.2, 3)[: 12 * emb.STEP_SAMPLES]
    mel = Interpreter(model_path=str(paths["melspectrogram"]),
                      experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    mel.resize_tensor_input(0, [1, len(audio)], strict=True)
    mel.allocate_tensors()
    mel.set_tensor(mel.get_input_details()[0]["index"], audio[np.newaxis].astype(np.float32))
    mel.invoke()
    frames = mel.get_tensor(mel.get_output_details()[0]["index"]).reshape(-1, 32) / 10 + 2
    assert len(frames) == len(audio) // 160 - 3
    embedding = Interpreter(model_path=str(paths["embedding"]))
    embedding.allocate_tensors()
    expected = []
    for step in (10, 11, 12):
        end = 8 * step - 3
        embedding.set_tensor(embedding.get_input_details()[0]["index"],
                             frames[end - 76:end].astype(np.float32).reshape(1, 76, 32, 1))
        embedding.invoke()
        expected.append(embedding.get_tensor(embedding.get_output_details()[0]["index"]).reshape(96))
    got = emb.EmbeddingStream(features).process(audio)
    np.testing.assert_allclose(got, np.array(expected), rtol=0, atol=1e-4)


def test_clip_context_centres_the_clip_in_its_own_room_tone():
    clip = speech_like(1.0, 4)
    context = emb.clip_context(clip, 10)
    assert context.dtype == np.int16 and len(context) == 19 * emb.STEP_SAMPLES
    start = (len(context) - len(clip)) // 2
    assert np.array_equal(context[start:start + len(clip)], clip)
    pad_rms = np.sqrt(np.mean(context[:start].astype(np.float64) ** 2))
    assert 40 < pad_rms < 80  # the clip's quiet parts are N(0, 60)
    assert np.array_equal(emb.clip_context(clip, 10), context)  # deterministic
    long = speech_like(3.0, 5)
    assert np.array_equal(emb.clip_context(long, 10), long[(len(long) - len(context)) // 2:][:len(context)])


def test_more_windows_than_one_batch_are_embedded_in_batches_with_the_same_numbers(features):
    windows = np.random.default_rng(5).normal(2.0, 1.0, (emb.MAX_BATCH * 2 + 3, emb.WINDOW_FRAMES, emb.MEL_BINS))
    batched = features.embed_many(windows.astype(np.float32))
    assert batched.shape == (len(windows), emb.EMBEDDING_DIM)
    assert max(features._batch_models) <= emb.MAX_BATCH  # the model is never resized beyond one batch
    for i in (0, emb.MAX_BATCH, len(windows) - 1):  # the first of each batch and the last
        assert np.array_equal(batched[i], features.embed(windows[i]))


def test_bad_audio_is_one_clear_error(features):
    stream = emb.EmbeddingStream(features)
    with pytest.raises(InputError, match="int16"):
        stream.process(np.zeros(100, np.float32))
    with pytest.raises(InputError, match="odd byte count"):
        stream.process(b"\x00\x01\x02")


def test_clips_embedded_in_several_processes_equal_those_embedded_in_one(features, monkeypatch):
    from trainer import kws_embedding

    clips = np.stack([speech_like(1.0, seed) for seed in range(7)])
    monkeypatch.setattr(kws_embedding, "CHUNK_CLIPS", 3)  # 3 chunks, so 2 worker processes on 2 cores
    spread = kws_embedding.embed_clips(clips, features)
    expected = emb.clips_embeddings(clips, features, kws_embedding.FRAMES, kws_embedding.SHIFT)
    assert spread.shape == expected.shape and np.array_equal(spread, expected)
