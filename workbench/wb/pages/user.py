"""User: one user's history, ground truth and prompt tokens in the selected run."""

from __future__ import annotations

import streamlit as st

from wb import resources, state as S
from wb.sidebar import selected_user


def render(bundle, split) -> None:
    from pap_rec_core.comparison import user_history

    st.header("User")
    user = selected_user(split)
    if user is None:
        if st.session_state.get(S.USER) is None:
            st.info("Pick or type a user id in the sidebar.")
        return
    uid = split.data.user_ids[user]
    st.subheader(f"User {uid}")
    test = int(split.test_target[user])
    if test < 0:
        st.warning(f"User {uid} has too short a history for validation and test items.")
        return
    titles = split.data.item_titles()
    c1, c2 = st.columns([2, 1])
    with c1:
        st.markdown(f"**History** (last 20 of {len(split.history(user, 'test'))} items, oldest first)")
        st.dataframe(user_history(split, user, "test"), hide_index=True, key="user_history")
    with c2:
        st.markdown("**Ground truth (test) next item**")
        st.markdown(f"`{split.data.item_ids[test]}`" + (f" — {titles[test]}" if titles is not None else ""))
        run = st.session_state.get(S.RUN)
        if run:
            tl = resources.timeline(run)
            tok = bundle.tokenizer
            st.markdown("**Prompt tokens in the selected run**")
            shared = tl.shared_after(tl.n_steps)
            st.markdown("shared: " + " ".join(f"`{tok.token_text(t)}`" for t in shared))
            if tl.n_personal:
                if user in tl.users:
                    st.markdown("personal: " + " ".join(f"`{tok.token_text(t)}`" for t in tl.personal_after(tl.n_steps, user)))
                else:
                    st.caption(f"User {uid} was not among the {len(tl.users)} users this run searched.")
