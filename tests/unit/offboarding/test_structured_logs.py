"""The worker logs one JSON line per message, with its request id and outcome, through the logger
handed in."""

from __future__ import annotations

import io
import json
import logging

from aws_lambda_powertools import Logger

from tests.unit.offboarding.fakes import body, make_world


def test_the_worker_logs_json_lines_with_request_id_and_outcome_through_the_logger_handed_in() -> None:
    stream = io.StringIO()
    logger = Logger(service="offboarding-log-test", logger_handler=logging.StreamHandler(stream))
    world = make_world()
    worker = world.worker(max_per_hour=1, logger=logger)
    worker.handle_message(body("suspend", requestId="r-done"))
    worker.handle_message(body("suspend", email="guest@partner.com", requestId="r-refused"))
    worker.handle_message(body("suspend", email="bob@example.com", requestId="r-held"))
    worker.handle_message("{not json")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 4
    assert [(line["requestId"], line["outcome"]) for line in lines[:3]] == [
        ("r-done", "done"),
        ("r-refused", "refused"),
        ("r-held", "held"),
    ]
    assert lines[3]["outcome"] == "refused"
    assert all(line["service"] == "offboarding-log-test" for line in lines)
