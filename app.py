"""The workbench app: `streamlit run app.py`. Navigation comes from the one page list in
fvcore.webapp.PAGES; the sidebar (checkpoints folder, dataset, models) is shared by every page."""
import streamlit as st

from fvcore import webapp

webapp.configure()
page = st.navigation([st.Page(p.path, title=p.title, icon=p.icon, default=p.default, help=p.about)
                      for p in webapp.PAGES])
webapp.sidebar()
with webapp.entrypoint():
    page.run()
