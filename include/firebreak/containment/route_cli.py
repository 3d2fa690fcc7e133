"""``firebreak route``: set where a model's traffic goes, by hand, with who and why in the routing ledger.

SOP stages *Contain* and *Restore*, by a person: contain a model before an alert does, or
send traffic back to a healthy champion an incident left on its fallback (``firebreak
breaker close`` releases the gateway's breaker; it never changed routing). The change is a
compare-and-set on the routing state (:func:`firebreak.containment.routing.set_route`).

Wiring (in ``firebreak.cli``): ``route_cli.add_parser(sub)`` and ``return route_cli.run(args, settings)``.
"""

from __future__ import annotations

import argparse
import re
import sys

from firebreak.errors import ConfigurationError, ExitCode
from firebreak.incidents.enums import Route
from firebreak.settings import Settings

__all__ = ["add_parser", "run"]

TARGETS = ("champion", "fallback", "disabled")
ACTOR = re.compile(r"^[A-Za-z0-9._@+-]{1,100}$")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "route",
        help="route a model's traffic to its champion, its policy's fallback, or nowhere; who and why are recorded",
        description="Compare-and-set on the routing state every gateway worker follows; the change, its author "
        "and its reason go to the routing ledger. 'fallback' is the policy's containment route.",
    )
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--model", required=True, help="registered model name with a policy")
    parser.add_argument("--reason", required=True, help="why (recorded in the routing ledger)")
    parser.add_argument("--by", required=True, dest="actor", help="who (recorded in the routing ledger)")
    return parser


def run(args: argparse.Namespace, settings: Settings) -> int:
    """0 when the route is (now) the target; 2 for bad input; a lost race is an error naming the new state."""
    from firebreak.containment.routing import set_route
    from firebreak.containment.state import RoutingStore
    from firebreak.policy.schema import load_policy

    reason = " ".join(str(args.reason).split())
    if not 3 <= len(reason) <= 500:
        raise ConfigurationError("--reason must say why, in 3 to 500 characters")
    if not ACTOR.fullmatch(args.actor):
        raise ConfigurationError(
            f"--by {args.actor[:40]!r}: a name or e-mail (letters, digits, . _ @ + -), 100 at most"
        )
    policy = load_policy(args.model, settings.policies_dir)  # an unknown model is an error, not a new route
    target = Route.CHAMPION if args.target == "champion" else Route.DISABLED
    if args.target == "fallback":
        target = Route(policy.containment.route)
    store = RoutingStore(settings.state_db_url)
    change = set_route(store, args.model, target, actor=args.actor, reason=reason)
    if change.changed:
        print(f"{args.model}: {change.previous} -> {change.route} (generation {change.generation}), by {args.actor}")
    else:
        print(f"{args.model}: already on {change.route} (generation {change.generation}); nothing changed")
    breaker = store.get_breaker(args.model)
    if target == Route.CHAMPION and breaker is not None and breaker.state != "closed":
        print(
            f"note: the gateway's breaker is {breaker.state} ({breaker.reason}); "
            f"`firebreak breaker close --model {args.model}` releases it",
            file=sys.stderr,
        )
    return ExitCode.OK
