// Parses each Adaptive Card (a JSON array on stdin) with Microsoft's own object model
// (the `adaptivecards` package that renders cards), validates it, and serialises it back.
// Prints, per card, the parse and validation events and the card as the library sees it:
// a property or element the library does not know would be reported or dropped.
"use strict";
const AC = require("adaptivecards/dist/adaptivecards.js");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const answers = JSON.parse(input).map((json) => {
    const card = new AC.AdaptiveCard();
    const context = new AC.SerializationContext();
    card.parse(json, context);
    const events = [];
    for (let i = 0; i < context.eventCount; i++) {
      events.push(context.getEventAt(i).message);
    }
    for (const event of card.validateProperties().validationEvents) {
      events.push(event.message);
    }
    return { events, card: card.toJSON() };
  });
  process.stdout.write(JSON.stringify(answers));
});
