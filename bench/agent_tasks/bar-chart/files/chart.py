def bar_chart(counts, width=20):
    pass
