"""The graph editor: a QGraphicsScene that mirrors the core Graph, its items, view and gestures."""
