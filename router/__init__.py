"""The ticket lifecycle: intake, the answer/forward decision, departments, citizen notices, and
delivering the outbox through the channel adapters. It speaks no provider's protocol."""

from router.config import DepartmentConfig, DispatcherConfig, RouterConfig
from router.decision import Decision
from router.desk import Desk, DeskError, ReviewItem, Staff, TicketNotFound, TicketView
from router.dispatcher import Dispatcher
from router.intake import Router
from router.lifecycle import InvalidTransition, Lifecycle
from router.notices import NoticeError, Notices

__all__ = [
    "Decision",
    "DepartmentConfig",
    "Desk",
    "DeskError",
    "Dispatcher",
    "DispatcherConfig",
    "InvalidTransition",
    "Lifecycle",
    "NoticeError",
    "Notices",
    "ReviewItem",
    "Router",
    "RouterConfig",
    "Staff",
    "TicketNotFound",
    "TicketView",
]
