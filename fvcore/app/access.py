"""Who may do what: the local workbench (everything, the sidebar's free folder box) or public mode
(``$FVCORE_PUBLIC=1``) for a deployment, where the roots come from the settings only, pages and
errors never show an absolute server path, and operator-only pages and actions refuse a visitor
in one line until they sign in as the operator: ``$FVCORE_OPERATOR_TOKEN`` typed into the
sidebar (compared in constant time), or Streamlit's ``st.login`` (OIDC, configured in
``.streamlit/secrets.toml [auth]``) with an e-mail listed in ``$FVCORE_OPERATOR_EMAILS``."""
from __future__ import annotations

import hmac
import re
import time
from pathlib import Path
from typing import Any, Iterable, Optional

import streamlit as st

from fvcore import settings

OPERATOR = "_fv_operator"
TOKEN_KEY = "operator_token"
FAILED = "_fv_token_failed"
TRIES, LOCKOUT = 5, 60.0
"""Wrong tokens a session may type before it waits :data:`LOCKOUT` seconds."""
_ABSOLUTE = re.compile(r"(?<![\w.:/~\\…-])/[^\s'\"`,;:()\[\]{}<>|*]+")


def public() -> bool:
    """The app runs in public mode (``$FVCORE_PUBLIC``)."""
    return settings.public()


def login_configured() -> bool:
    """``.streamlit/secrets.toml`` has an ``[auth]`` section: st.login can sign people in."""
    try:
        return bool(st.secrets.load_if_toml_exists() and "auth" in st.secrets)
    except Exception:  # noqa: BLE001 - unreadable secrets mean no sign-in provider
        return False


def _login_email() -> str:
    if not login_configured():
        return ""
    try:
        return str(st.user.get("email") or "").lower() if st.user.is_logged_in else ""
    except Exception:  # noqa: BLE001 - no user info outside a browser session
        return ""


def is_operator() -> bool:
    """Everyone is the operator of a local workbench; in public mode, a session that typed the
    operator token or signed in with an operator e-mail."""
    if not public() or st.session_state.get(OPERATOR):
        return True
    email = _login_email()
    return bool(email) and email in settings.operator_emails()


def token_matches(typed: str) -> bool:
    """``typed`` is the operator token (constant-time comparison; no token set: never)."""
    token = settings.operator_token()
    return bool(token) and hmac.compare_digest(typed.encode(), token.encode())


def _try_token() -> None:
    typed = st.session_state.get(TOKEN_KEY, "")
    st.session_state[TOKEN_KEY] = ""   # never kept in the box
    now = time.time()
    failed = [t for t in st.session_state.get(FAILED, []) if now - t < LOCKOUT]
    if len(failed) >= TRIES:
        st.session_state[FAILED] = failed
    elif token_matches(typed):
        st.session_state[OPERATOR] = True
        st.session_state.pop(FAILED, None)
    elif typed:
        st.session_state[FAILED] = [*failed, now]


def sign_in_box() -> None:
    """The sidebar's operator sign-in (public mode only): the token box, st.login's button, or
    who is signed in and a way out."""
    if not public():
        return
    if is_operator():
        st.caption("Signed in as the operator.")
        if st.session_state.get(OPERATOR):
            if st.button("Sign out", key="operator_sign_out"):
                st.session_state.pop(OPERATOR, None)
                st.rerun()
        else:
            st.button("Log out", key="operator_logout", on_click=st.logout)
        return
    if not settings.operator_token() and not login_configured():
        return
    with st.expander("Operator sign-in"):
        if settings.operator_token():
            st.text_input("Operator token", type="password", key=TOKEN_KEY, on_change=_try_token,
                          help="The secret the operator set in $FVCORE_OPERATOR_TOKEN.")
            failed = [t for t in st.session_state.get(FAILED, []) if time.time() - t < LOCKOUT]
            if len(failed) >= TRIES:
                st.error(f"Too many wrong tokens: retry in about {LOCKOUT:.0f} s.")
            elif failed:
                st.error("Wrong token.")
        if login_configured():
            st.button("Sign in", key="operator_login", on_click=st.login)


def refusal(what: str) -> str:
    """The one line an operator-only page or action shows a visitor."""
    how = (": sign in as the operator in the sidebar"
           if settings.operator_token() or login_configured() else "")
    return f"{what} is for the operator of this public server{how}."


def require_operator(what: str) -> None:
    """Stop the page with one line unless this session is the operator (always true locally)."""
    if not is_operator():
        st.info(refusal(what), icon=":material/lock:")
        st.stop()


# -- server paths -------------------------------------------------------------------------------

def _roots(extra: Iterable[Optional[Path]]) -> list[tuple[str, str]]:
    """(absolute prefix, what it becomes) for every known root, longest first."""
    roots = [*extra, settings.checkpoints_root(), *settings.data_roots(), settings.samples_dir(),
             settings.runs_db().parent, settings.REPO]
    pairs = {}
    for root in filter(None, roots):
        for form in {str(Path(root).absolute()), str(Path(root).resolve())}:
            if form != "/":
                pairs[form.rstrip("/")] = Path(form).name
    return sorted(pairs.items(), key=lambda p: -len(p[0]))


def shown(text: str, root: Optional[Path] = None, *, keep_local: bool = False) -> str:
    """``text`` as a page may show it: paths under the checkpoints ``root`` relative to it (also
    locally, unless ``keep_local``); in public mode every known root (data, samples, the
    repository) likewise and any other absolute path cut to ``…/<its last name>``."""
    if not public():
        if keep_local or root is None:
            return text
        prefix = str(Path(root).absolute()).rstrip("/")
        return text.replace(prefix + "/", "") if prefix else text
    for prefix, name in _roots([root]):
        text = text.replace(prefix + "/", "").replace(prefix, name)
    return _ABSOLUTE.sub(lambda m: "…/" + m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def shown_value(value: Any) -> Any:
    """:func:`shown` over every string of a JSON-like value (public mode; locally unchanged)."""
    if isinstance(value, str):
        return shown(value, keep_local=True)
    if isinstance(value, dict):
        return {k: shown_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [shown_value(v) for v in value]
    return value
