"""The workbench app: `streamlit run app.py`. The navigation comes from the one page list
fvcore.webapp.PAGES; the sidebar (checkpoints folder, dataset, models) is shared by every page."""
from fvcore import webapp

webapp.configure()
page = webapp.navigation()
webapp.sidebar()
with webapp.entrypoint():
    page.run()
