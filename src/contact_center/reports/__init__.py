"""Reports for supervisors and admins: messages, replies, conversations and opt-outs over a period
of Brasília days, each as SVG charts with their figures as tables and CSV."""
