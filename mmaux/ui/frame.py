"""The frame every dashboard page shares: its title line, its footer, the navigation's page names,
and `stop` (say why there is nothing to show, then end the run)."""
from __future__ import annotations

import streamlit as st

OPENMOJI_CREDIT = ("Emoji artwork in SynthPosts images: [OpenMoji](https://openmoji.org), the open-source "
                   "emoji and icon project, licensed [CC BY-SA 4.0](https://creativecommons.org/licenses/by-sa/4.0/).")
NAV_PAGES = (  # (file, title in the navigation, URL path) of every page, app.py's st.navigation; home first
    ("pages/0_Checkpoints.py", "Checkpoints", "Checkpoints"),
    ("pages/1_Predictions.py", "Predictions", "Predictions"),
    ("pages/2_Match_Scores.py", "Match scores", "Match_Scores"),
    ("pages/3_Embeddings.py", "Embeddings", "Embeddings"),
    ("pages/4_Attributions.py", "Attributions", "Attributions"),
    ("pages/5_Your_Post.py", "Your post", "Your_Post"),
)
# the pages a post's detail view links to (Match scores, Embeddings, Attributions), by their navigation names
PAGE_LINKS = tuple((file, f"{title} →") for file, title, _ in NAV_PAGES[2:5])
PREDICTIONS_ONLY_NOTE = ("predictions-only runs (imported from elsewhere, or shipped seeds kept for the statistics) "
                         "hold no weights or embeddings")
SYNTHPOSTS_NOTE = ("SynthPosts is a controlled synthetic test bed with known image-text relations, "
                   "not a claim about real social media posts.")


def page_header(title: str, what: str) -> None:
    """Page config, title and the one line saying what the page shows (call first on a page)."""
    st.set_page_config(page_title=f"{title} · mmaux", layout="wide")
    st.title(title)
    st.caption(what)


def footer() -> None:
    """The OpenMoji credit and the SynthPosts disclaimer, at the bottom of every page."""
    st.divider()
    st.caption(OPENMOJI_CREDIT + "  \n" + SYNTHPOSTS_NOTE)


def stop(message: str, kind: str = "info") -> None:
    """Show `message` (st.info or st.warning), the footer, and end this run of the page: the way a
    page says "nothing to show yet" instead of failing."""
    getattr(st, kind)(message)
    footer()
    st.stop()
