"""``python -m <service>.main dead-letters list|replay|purge``: the operators' dead-letter API from a shell.

Prints JSON (one document), as ``/admin/<service>/dead-letters`` answers; a refusal (an
unknown queue, ids not parked) goes to stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from shared.domain_errors import DomainError
from shared.messaging.dead_letters import DeadLetters

DEAD_LETTER_ACTIONS = ["list", "replay", "purge"]


async def run_dead_letters(dead_letters: DeadLetters, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Exit status: 0 done, 2 refused."""
    action = args.action or "list"
    if action != "list" and (args.queue is None or bool(args.ids) == args.all):
        parser.error(f"dead-letters {action} needs --queue and either --ids or --all")
    if args.page < 1 or not 1 <= args.count <= 500:
        parser.error("--page must be at least 1 and --count between 1 and 500")
    try:
        if action == "list" and args.queue is None:
            result: object = [dataclasses.asdict(queue) for queue in await dead_letters.queues()]
        elif action == "list":
            items, total = await dead_letters.read(args.queue, page=args.page, count=args.count)
            result = {"queue": args.queue, "items": [dataclasses.asdict(item) for item in items], "total": total}
        elif action == "replay":
            result = {"replayed": await dead_letters.replay(args.queue, None if args.all else args.ids)}
        else:
            result = {"purged": await dead_letters.purge(args.queue, None if args.all else args.ids)}
    except DomainError as error:
        print(f"{error.code}: {error.detail}", file=sys.stderr)
        return 2
    print(json.dumps(result, default=str, indent=2))
    return 0
