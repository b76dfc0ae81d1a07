"""The admin UI's sending pages, as one router: channel configurations, messages, campaigns.

Each resource has its module (``channel_configuration_pages``, ``message_pages``,
``campaign_pages``); ``api/routes/registry.py`` includes :data:`router`.
"""

from __future__ import annotations

from fastapi import APIRouter

from textrelay.web import campaign_pages, channel_configuration_pages, message_pages

router = APIRouter(include_in_schema=False)
router.include_router(channel_configuration_pages.router)
router.include_router(message_pages.router)
router.include_router(campaign_pages.router)
