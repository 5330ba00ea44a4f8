"""The workbench app: `streamlit run app.py`. Navigation comes from the one page list in
fvcore.webapp.PAGES; the sidebar (checkpoints folder, dataset, models) is shared by every page."""
import streamlit as st

from fvcore import webapp

st.set_page_config(page_title="fvcore workbench", page_icon=":material/compare:", layout="wide")
page = st.navigation([st.Page(p.path, title=p.title, icon=p.icon, default=p.default, help=p.about)
                      for p in webapp.PAGES])
webapp.style()
webapp.sidebar()
page.run()
