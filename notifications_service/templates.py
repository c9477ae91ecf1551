"""The text and HTML of each notification."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from shared.contracts.orders import OrderCancelled, OrderCreated
from shared.contracts.reports import ReportFailed, ReportGenerated


@dataclass(frozen=True, slots=True)
class Mail:
    subject: str
    text: str
    html: str


def order_confirmation(order: OrderCreated) -> Mail:
    lines = [f"  {item.quantity} x {item.sku} at {item.unit_price} {order.currency}" for item in order.items]
    text = "\n".join(
        [
            "Thank you for your order.",
            "",
            f"Order: {order.order_id}",
            f"Placed: {order.created_at.isoformat()}",
            "",
            *lines,
            "",
            f"Items: {order.count_product}",
            f"Total: {order.total_amount} {order.currency}",
        ]
    )
    currency = escape(order.currency)
    rows = "".join(
        f"<tr><td>{escape(item.sku)}</td><td>{item.quantity}</td><td>{item.unit_price} {currency}</td></tr>" for item in order.items
    )
    html = (
        f"<p>Thank you for your order.</p><p>Order <strong>{order.order_id}</strong>, placed {order.created_at.isoformat()}</p>"
        f"<table><tr><th>Item</th><th>Quantity</th><th>Unit price</th></tr>{rows}</table>"
        f"<p>Items: {order.count_product}<br>Total: <strong>{order.total_amount} {escape(order.currency)}</strong></p>"
    )
    return Mail(subject=f"Order confirmation {order.order_id}", text=text, html=html)


def order_cancellation(order: OrderCancelled) -> Mail:
    lines = [
        "Your order has been cancelled.",
        "",
        f"Order: {order.order_id}",
        f"Placed: {order.created_at.isoformat()}",
        f"Cancelled: {order.cancelled_at.isoformat()}",
        f"Total: {order.total_amount} {order.currency}",
    ]
    if order.reason:
        lines.append(f"Reason: {order.reason}")
    html = (
        f"<p>Your order <strong>{order.order_id}</strong>, placed {order.created_at.isoformat()}, has been cancelled.</p>"
        f"<p>Total: {order.total_amount} {escape(order.currency)}</p>"
    )
    if order.reason:
        html += f"<p>Reason: {escape(order.reason)}</p>"
    return Mail(subject=f"Order cancelled {order.order_id}", text="\n".join(lines), html=html)


def report_generated(report: ReportGenerated) -> Mail:
    text = (
        f"The report for {report.report_date} is ready: {report.orders} orders, {report.total_products} products.\n"
        f"Task: {report.task_id}\nGenerated: {report.generated_at.isoformat()}"
    )
    html = (
        f"<p>The report for <strong>{report.report_date}</strong> is ready: {report.orders} orders, {report.total_products} products.</p>"
    )
    return Mail(subject=f"Report {report.report_date} ready", text=text, html=html)


def report_failed(report: ReportFailed) -> Mail:
    text = f"The report for {report.report_date} failed.\nTask: {report.task_id}\nError: {report.error}"
    html = f"<p>The report for <strong>{report.report_date}</strong> failed.</p><pre>{escape(report.error)}</pre>"
    return Mail(subject=f"Report {report.report_date} FAILED", text=text, html=html)
