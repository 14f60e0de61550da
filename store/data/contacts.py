"""Contacts: the citizen behind an address on a channel."""

from __future__ import annotations

from sqlalchemy import bindparam
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import Contact


async def get_or_create_contact(
    session: AsyncSession,
    *,
    channel: str,
    address: str,
    display_name: str | None = None,
    language: str | None = None,
) -> Contact:
    # Locked until the intake commits: the retention purge skips a contact that is writing to us,
    # and a contact purged meanwhile no longer matches its address here (a new one is made).
    where = {"channel": channel, "address": address}
    contact = (await session.exec(_CONTACT_FOR_UPDATE, params=where)).first()
    if contact is None:
        # A nested transaction makes a concurrent first message of the same contact harmless:
        # the loser of the race reads the winner's row instead of failing the whole intake.
        try:
            async with session.begin_nested():
                contact = Contact(
                    channel=channel, address=address, display_name=display_name, language=language
                )
                session.add(contact)
        except IntegrityError:
            contact = (await session.exec(_CONTACT, params=where)).one()
    elif display_name and contact.display_name != display_name:
        contact.display_name = display_name
    return contact


# The hot path's queries are built once: building a statement and its cache key costs more than
# running it on SQLite.
_CONTACT = select(Contact).where(
    Contact.channel == bindparam("channel"), Contact.address == bindparam("address")
)
_CONTACT_FOR_UPDATE = _CONTACT.with_for_update()


async def get_contact(session: AsyncSession, *, contact_id: int) -> Contact | None:
    return await session.get(Contact, contact_id)


async def find_contact(session: AsyncSession, *, channel: str, address: str) -> Contact | None:
    return (await session.exec(_CONTACT, params={"channel": channel, "address": address})).first()
