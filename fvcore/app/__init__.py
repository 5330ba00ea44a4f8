"""The Streamlit wing: the only place that imports streamlit or plotly. The page shell (page
list, navigation, sidebar, error guard), cached loading, page sections, figures and the table
frames the pages show."""
