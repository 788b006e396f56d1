"""How dispatch jobs are queued."""

from __future__ import annotations

from huey import MemoryHuey

from contact_center.jobs import Jobs


def test_messages_to_retry_after_the_same_delay_go_back_as_one_job():
    jobs = Jobs(MemoryHuey("jobs-test", immediate=True))  # delayed tasks wait in its schedule
    jobs.schedule([(1, 30.0), (2, 30.0), (3, 30.0), (4, 120.0)], jobs.dispatch_later)
    jobs.schedule([(5, 60.0), (6, 60.0)], jobs.check_unknown_later)
    scheduled = sorted((task.name, task.args) for task in jobs.huey.scheduled())
    assert scheduled == [("check_unknown", ([5, 6],)), ("dispatch_messages", ([1, 2, 3],)),
                         ("dispatch_messages", ([4],))]
