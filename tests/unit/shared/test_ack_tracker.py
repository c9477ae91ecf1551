"""The ack tracker sends one frame per batch only when no earlier delivery is still running."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.messaging.acks import AckTracker


@dataclass
class Channel:
    frames: list[tuple[int, bool]] = field(default_factory=list)

    def settled(self) -> set[int]:
        """Tags the broker considers acked after these frames (multiple settles every tag up to it)."""
        done: set[int] = set()
        for tag, multiple in self.frames:
            done |= set(range(1, tag + 1)) if multiple else {tag}
        return done


@dataclass
class Message:
    delivery_tag: int
    channel: Channel

    async def ack(self, multiple: bool = False) -> None:
        # as RabbitMQ does: a tag acked twice is an unknown tag, which closes the channel
        assert self.delivery_tag not in self.channel.settled(), f"tag {self.delivery_tag} acked twice"
        self.channel.frames.append((self.delivery_tag, multiple))


def deliver(tracker: AckTracker, channel: Channel, tags: range) -> list[Message]:
    messages = [Message(tag, channel) for tag in tags]
    for message in messages:
        tracker.delivered(message)
    return messages


async def test_batches_finished_in_order_take_one_frame_each() -> None:
    tracker, channel = AckTracker(), Channel()
    messages = deliver(tracker, channel, range(1, 301))
    for start in range(0, 300, 100):
        await tracker.finish(messages[start : start + 100])
    assert channel.frames == [(100, True), (200, True), (300, True)]


async def test_a_running_batch_is_never_acked_by_a_later_one() -> None:
    tracker, channel = AckTracker(), Channel()
    messages = deliver(tracker, channel, range(1, 11))
    slow, fast = messages[:5], messages[5:]
    await tracker.finish(fast)
    assert channel.settled() == {6, 7, 8, 9, 10}
    assert all((tag, True) not in channel.frames for tag in range(6, 11))
    await tracker.finish(slow)
    assert channel.settled() == set(range(1, 11))
    assert channel.frames[-1] == (5, True)


async def test_a_message_left_unacked_only_costs_the_shortcut() -> None:
    tracker, channel = AckTracker(), Channel()
    messages = deliver(tracker, channel, range(1, 8))
    parked, rest = messages[0], messages[1:]
    await tracker.finish(rest[:3])
    await tracker.finish(rest[3:])
    assert channel.settled() == {2, 3, 4, 5, 6, 7}
    assert 1 not in channel.settled()
    assert parked.delivery_tag not in {tag for tag, _ in channel.frames}


async def test_single_messages_and_gaps_are_acked_exactly_once() -> None:
    tracker, channel = AckTracker(), Channel()
    messages = deliver(tracker, channel, range(1, 21))
    for index in (3, 7, 0, 1, 2, 19, 4, 5, 6, *range(8, 19)):
        await tracker.finish([messages[index]])
    assert channel.settled() == set(range(1, 21))
    singles = [tag for tag, multiple in channel.frames if not multiple]
    assert len(singles) == len(set(singles))
    assert tracker.frames_sent == len(channel.frames)
