/**
 * Message texts in several languages and scripts, chosen to break naive writers: emoji and ZWJ
 * sequences, CJK, right-to-left text, combining marks, embedded newlines, tabs and quotes, and
 * text a spreadsheet would take for a formula.
 */
export const CONSUMER_TEXTS: readonly string[] = [
  "Hi there, I need help with my order",
  "Hola, ¿dónde está mi pedido? Llevo esperando una semana.",
  "Bonjour ! Je voudrais annuler mon abonnement, s'il vous plaît.",
  "Guten Tag, meine Rechnung ist falsch – können Sie das prüfen?",
  "注文した商品がまだ届いていません。確認していただけますか？",
  "我的订单显示已发货，但是物流信息没有更新。",
  "주문 번호를 알려드릴게요: 12345",
  "مرحبا، أريد تغيير عنوان التوصيل من فضلك",
  "שלום, יש לי בעיה עם החשבון שלי",
  "Здравствуйте! Не могу войти в личный кабинет.",
  "नमस्ते, मेरा रिफंड कब आएगा?",
  "Thanks!! 🙏😊 That was quick 🚀",
  "My family 👨‍👩‍👧‍👦 loves it — the dev team 👩‍💻👨🏽‍💻 too 🏳️‍🌈",
  "Flag test: 🇺🇸 🇯🇵 🇧🇷 and skin tones 👍🏻👍🏿",
  "Line one\nLine two\nLine three",
  'She said "it\'s broken", then "never mind"',
  "Comma, separated, values; and a\ttab",
  "=SUM(A1:A10)",
  "+1 555 0100",
  "-2+3",
  "@HYPERLINK(\"http://example.com\")",
  "Crème brûlée, naïve café, Zoë — combining: é vs é",
  "Order #A-1029 / ref: 'X'",
  "مرحبا hello שלום mixed directions 123",
];

export const AGENT_TEXTS: readonly string[] = [
  "Hello! I'm happy to help. Could you share your order number?",
  "Claro, lo reviso ahora mismo.",
  "Bien sûr, je m'en occupe.",
  "かしこまりました。少々お待ちください。",
  "好的，我来帮您查询。",
  "بالتأكيد، سأقوم بتحديث العنوان الآن",
  "בוודאי, אני בודק את זה",
  "Done ✅ — anything else? 😊",
  "Here is the summary:\n1. Refund issued\n2. Email sent",
  'The status reads "shipped" (carrier: "UPS")',
  "=HYPERLINK(\"http://example.com\",\"click\")",
  "+44 20 7946 0958 is our UK line",
];

export const SURVEY_ANSWERS: readonly string[] = ["Yes", "No", "5", "4", "3", "Très bien 👍", "非常满意", "ممتاز", "=1+1", "Great,\nthanks"];

export const FIRST_NAMES: readonly string[] = ["Zoë", "José", "Ana", "Ørjan", "Mei", "太郎", "Fatima", "Noa", "Olga", "Priya", "Liam", "Ngozi", "Søren", "Chloé"];
export const LAST_NAMES: readonly string[] = ["Núñez", "Müller", "O'Brien", "山田", "王", "العلي", "כהן", "Иванова", "Sharma", "Smith", "Okafor", "Ørsted", "Dubois"];
export const SKILL_NAMES: readonly string[] = ["Sales", "Support", "Billing", "Ventas España", "日本語サポート", "VIP \"Gold\"", "Retention, EU", "=Escalations"];
export const GROUP_NAMES: readonly string[] = ["Main Group", "Tier 1", "Tier 2 — EMEA", "東京チーム", "Night shift"];
export const COUNTRIES: readonly string[] = ["United States", "España", "Deutschland", "日本", "Israel", "Egypt", "India", "Brasil"];
export const BROWSERS: readonly string[] = ["Chrome 120.0", "Safari 17.1", "Firefox 121.0", "Edge 120.0"];
export const DEVICES: readonly string[] = ["DESKTOP", "MOBILE", "TABLET"];
export const SOURCES: readonly string[] = ["APP", "SHARK", "SMS", "FACEBOOK", "Apple Business Chat"];
