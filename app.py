"""The workbench app: `streamlit run app.py`. The navigation comes from the one page list
fvcore.app.shell.PAGES; the sidebar (checkpoints folder, dataset, models) is shared by every
page."""
from fvcore.app import shell

shell.configure()
page = shell.navigation()
shell.sidebar()
with shell.entrypoint():
    page.run()
