"""A staff member ready to use the console in a test: added, logged in, TOTP enrolled
(what /staff/login and /staff/enrol do), through the service."""

from datetime import datetime

import pyotp

from gateway.services.staff import StaffService

STAFF_ADDRESS = "192.0.2.1"


async def enrolled_staff_token(staff: StaffService, name: str, role: str, password: str,
                               at: datetime) -> str:
    await staff.add(name, role, password)
    first = await staff.log_in(name, password, None, STAFF_ADDRESS)
    session = await staff.session(first.token)
    enrolment = await staff.begin_enrolment(session)
    return await staff.confirm_enrolment(
        session, pyotp.TOTP(enrolment.secret).at(at), STAFF_ADDRESS)
