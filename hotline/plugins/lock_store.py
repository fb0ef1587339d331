"""Rasa's lock store for several Rasa replicas, made atomic (endpoints.yml
`lock_store.type: hotline.plugins.lock_store.AtomicRedisLockStore`, written by hotline/launcher.py).

Rasa 3.6's RedisLockStore changes a conversation's ticket lock by reading it, changing it in the
process and writing it back (GET … SET). Two replicas receiving a turn of the same conversation at
the same moment both read "no lock", both write ticket 0, and both process their turn at once;
the SQL tracker store then keeps one turn and drops the other (tests/test_cluster.py saw a turn
lost this way). Here each change is one optimistic Redis transaction: WATCH the lock's key, read,
MULTI … EXEC, and redo it if another replica changed the key in between (redis-py's
`Redis.transaction`). The lock format and keys are Rasa's own."""
from __future__ import annotations

import json
from typing import Callable, Optional, Tuple

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore

# A change gets the current lock (None: there is none) and returns (its result, the lock to
# store, or None to delete it).
Change = Callable[[Optional[TicketLock]], Tuple[object, Optional[TicketLock]]]


class AtomicRedisLockStore(RedisLockStore):
    def __init__(self, endpoint_config=None, **kwargs) -> None:
        if endpoint_config is not None:  # how Rasa builds a lock store named by module path
            kwargs = {"host": endpoint_config.url or "localhost", **endpoint_config.kwargs}
        super().__init__(**kwargs)

    def _atomically(self, conversation_id: str, change: Change) -> object:
        key = self.key_prefix + conversation_id
        outcome = {}

        def transaction(pipe) -> None:
            serialised = pipe.get(key)  # immediate while WATCHing
            lock = TicketLock.from_dict(json.loads(serialised)) if serialised else None
            outcome["result"], changed = change(lock)
            pipe.multi()
            if changed is None:
                pipe.delete(key)
            else:
                pipe.set(key, changed.dumps())

        self.red.transaction(transaction, key)
        return outcome["result"]

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def issue(lock):
            lock = lock or self.create_lock(conversation_id)
            return lock.issue_ticket(lock_lifetime), lock

        try:
            return self._atomically(conversation_id, issue)
        except Exception as error:
            raise LockError(f"Error while acquiring lock. Error:\n{error}")

    def update_lock(self, conversation_id: str) -> None:
        def drop_expired(lock):
            if lock is not None:
                lock.remove_expired_tickets()
            return None, lock

        self._atomically(conversation_id, drop_expired)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        def finish(lock):
            if lock is not None:
                lock.remove_ticket_for(ticket_number)
            return None, lock

        self._atomically(conversation_id, finish)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Give the ticket back; the lock goes only if nobody else holds a ticket, decided in the
        same transaction (Rasa decides it after a second read, when a ticket may have come)."""
        def give_back(lock):
            if lock is None:
                return None, None
            lock.remove_ticket_for(ticket_number)
            return None, lock if lock.is_someone_waiting() else None

        self._atomically(conversation_id, give_back)
