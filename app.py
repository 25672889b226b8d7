"""mmaux dashboard: the entry point. `st.navigation` names the pages (`ui.NAV_PAGES`); each page
is one file in pages/, the home page (Checkpoints) first, kept thin over the library. The home
page imports no torch; the pages that run a model import it when first opened."""
import streamlit as st

from mmaux.ui import NAV_PAGES

st.navigation([st.Page(path, title=title, url_path=url, default=i == 0)
               for i, (path, title, url) in enumerate(NAV_PAGES)]).run()
