"""Parsers and decoders of untrusted bytes: only their own clear errors, whatever comes in."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from securesystemslib.formats import encode_canonical

from opensdv.link.canonical import canonical_bytes
from opensdv.link.delta import DeltaError, apply_delta, make_delta
from opensdv.link.uptane import ManifestError, SignedEnvelope
from opensdv.vehicle.ota.errors import MetadataError
from opensdv.vehicle.ota.trust import parse_metadata

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_fast_canonical_json_equals_the_reference_encoder(value: object) -> None:
    assert canonical_bytes(value) == str(encode_canonical(value)).encode()


@given(st.binary(max_size=300) | json_values.map(lambda v: canonical_bytes({"signed": v, "signatures": []})))
def test_metadata_parser_raises_only_metadata_errors(data: bytes) -> None:
    try:
        parse_metadata(data, "timestamp", "fuzzed timestamp")
    except MetadataError as exc:
        assert "fuzzed timestamp" in str(exc)


@given(st.binary(max_size=300))
def test_manifest_parser_raises_only_manifest_errors(data: bytes) -> None:
    try:
        SignedEnvelope.from_bytes(data, "fuzzed manifest")
    except ManifestError as exc:
        assert str(exc).startswith("fuzzed manifest")


@settings(max_examples=50)
@given(st.binary(min_size=1, max_size=2000), st.binary(max_size=200), st.sampled_from(["zstd", "bsdiff4"]))
def test_corrupted_deltas_fail_cleanly(old: bytes, noise: bytes, codec: str) -> None:
    delta = make_delta(old, old[::-1], codec)
    corrupted = delta[: len(delta) // 2] + noise
    try:
        rebuilt = apply_delta(old, corrupted, len(old))
    except DeltaError:
        return
    assert len(rebuilt) <= len(old)  # a corruption that still decodes is caught by the hash check
