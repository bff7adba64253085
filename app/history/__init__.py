"""Assignment history in Redis: recording, reads, the outage spool and the embedded server.

``open_history(config)`` opens everything for an app's lifespan and yields a
``HistoryService``; ``docs/redis-keys.md`` documents the key layout and the event stream.
"""

from app.history.config import HistoryConfig
from app.history.embedded import EmbeddedRedis, EmbeddedRedisError, find_redis_server
from app.history.keys import Keys
from app.history.recorder import Recorder, create_redis
from app.history.records import (
    CustomerState,
    Flow,
    FlowMatrix,
    Member,
    MemberPage,
    Migration,
    Outcome,
    Profile,
    Record,
    RedisUnavailable,
    SegmentEvent,
    SegmentFlowTotals,
    new_record_id,
)
from app.history.service import HistoryService, HistoryStatus, open_history
from app.history.spool import Spool

__all__ = [
    "CustomerState",
    "EmbeddedRedis",
    "EmbeddedRedisError",
    "Flow",
    "FlowMatrix",
    "HistoryConfig",
    "HistoryService",
    "HistoryStatus",
    "Keys",
    "Member",
    "MemberPage",
    "Migration",
    "Outcome",
    "Profile",
    "Record",
    "Recorder",
    "RedisUnavailable",
    "SegmentEvent",
    "SegmentFlowTotals",
    "Spool",
    "create_redis",
    "find_redis_server",
    "new_record_id",
    "open_history",
]
