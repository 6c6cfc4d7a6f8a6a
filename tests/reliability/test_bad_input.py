"""CI-sized bad input: fuzzed frames against the live server, a hostile server against the client."""

from tests.reliability import bad_input, hostile_server


def test_the_server_answers_any_frame_with_bad_request_or_a_valid_answer_and_bob_sees_nothing(
    tmp_path,
):
    report = bad_input.run(examples=2000, mutations=2000, seed=20261126, workdir=tmp_path)
    assert report.examples == 2000 and report.mutations > 2000
    assert report.refused_by_decoder > 1000  # mostly bad frames, or the run proved little
    assert report.wrong_answers == [] and report.stalls == 0
    # Invalid UTF-8 closes with 1007, a frame over 1 MiB with 1009; nothing else closed the fuzzer.
    assert report.reconnects == {"1007": 1, "1009": 1}
    assert report.bystander_frames == 0 and not report.bystander_chat_changed
    assert report.server_alive and report.server_tracebacks == 0


def test_the_client_survives_garbage_oversize_and_shuffled_frames(tmp_path):
    report = hostile_server.run(examples=1000, seed=20261126, workdir=tmp_path)
    assert report.examples == 1000 and report.invalid_frame_errors > 500
    assert report.failed_requests == []
    assert report.connections_after_drop >= 2  # cut by the oversize frame, then a good one
    assert report.shuffled_answer_ok
    assert report.final_state == "connected"
