"""The sweep report: ``report.html`` (self-contained) and ``summary.md``, from a sweep folder."""
