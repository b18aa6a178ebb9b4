"""The classifier service on the real broker: raw in, tagged out, poison dead-lettered, still running."""

from __future__ import annotations

import threading

import pytest

from classify.command import run as run_classifier
from classify.config import ClassifierSettings
from classify.keywords import KeywordTagger
from tests.support.factories import seen
from tests.support.kafka import produce_raw, read_all
from wirewatch.contract import decode_dead_letter, decode_tagged, encode

pytestmark = pytest.mark.integration

STORIES = {
    "k1": "Gunmen abducted a businessman in Cali and demanded a ransom; police later rescued him.",
    "s1": "Police and gang members exchanged fire for an hour in the port district.",
    "n1": "Banana exports rose twelve percent in the first half of the year.",
}


def test_raw_articles_come_out_tagged_and_poison_is_dead_lettered(
    kafka_settings, new_topic, new_group
) -> None:
    raw, out, dlq = new_topic("test.raw"), new_topic("test.tagged"), new_topic("test.dlq", 1)
    settings = ClassifierSettings(
        kafka={"bootstrap": kafka_settings.bootstrap},
        classify_input_topic=raw,
        classify_output_topic=out,
        classify_group=new_group("classify"),
        dead_letter_topic=dlq,
        classify_batch_size=8,
    )
    stop = threading.Event()
    service = threading.Thread(
        target=run_classifier,
        args=(settings, stop),
        kwargs={"tagger": KeywordTagger()},
        daemon=True,
    )
    service.start()
    try:
        first = [(key, encode(seen(key, text=text, language="en"))) for key, text in STORIES.items()]
        produce_raw(kafka_settings, raw, [*first, ("poison", b"\x00\x01 not json")])
        tagged = read_all(kafka_settings, out, expected=3, timeout=60)
        letters = read_all(kafka_settings, dlq, expected=1, timeout=30)
        # the consumer is still running after the poison message: later articles flow too
        produce_raw(kafka_settings, raw, [("k2", encode(seen("k2", text=STORIES["k1"], language="en")))])
        later = read_all(kafka_settings, out, expected=4, timeout=60)
        assert service.is_alive()
    finally:
        stop.set()
        service.join(timeout=30)

    by_id = {m.article_id: m for m in (decode_tagged(r.value) for r in tagged)}
    assert set(by_id) == {"k1", "s1", "n1"}
    assert "kidnapping" in by_id["k1"].labels
    assert "shootout" in by_id["s1"].labels
    assert by_id["n1"].labels == []
    assert all(r.key.decode() == decode_tagged(r.value).article_id for r in tagged)
    assert by_id["k1"].model_name == "keyword-baseline" and by_id["k1"].article.text == STORIES["k1"]
    # the service locates each event (classify/geo): Cali is Colombia's; no place -> precision none
    k1_location, n1_location = by_id["k1"].location, by_id["n1"].location
    assert k1_location is not None and (k1_location.country, k1_location.place) == ("CO", "Cali")
    assert n1_location is not None and n1_location.precision == "none"
    letter = decode_dead_letter(letters[0].value)
    assert (letter.stage, letter.reason, letter.key, letter.source_topic) == (
        "classify",
        "invalid_json",
        "poison",
        raw,
    )
    assert {decode_tagged(r.value).article_id for r in later} == {"k1", "s1", "n1", "k2"}
    assert not service.is_alive()
