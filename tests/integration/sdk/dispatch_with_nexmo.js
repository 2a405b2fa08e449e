// Sends one dispatch with the Dispatch-era official Node SDK (nexmo
// 2.7.0-beta-1, `nexmo.dispatch.create`), exactly as its users did, against
// the gateway at GATEWAY_HOST:GATEWAY_PORT. Prints {error, response} as JSON.
"use strict";
const Nexmo = require("nexmo");

const nexmo = new Nexmo(
  {
    apiKey: process.env.API_KEY,
    apiSecret: process.env.API_SECRET,
    applicationId: process.env.APPLICATION_ID,
    privateKey: process.env.PRIVATE_KEY_FILE,
  },
  { apiHost: process.env.GATEWAY_HOST, port: Number(process.env.GATEWAY_PORT) },
);

nexmo.dispatch.create(
  "failover",
  [
    {
      from: { type: "whatsapp", number: "447700900001" },
      to: { type: "whatsapp", number: "447700900000" },
      message: { content: { type: "text", text: "Your code is 1234" } },
      failover: { expiry_time: 600, condition_status: "read" },
    },
    {
      from: { type: "sms", number: "447700900001" },
      to: { type: "sms", number: "447700900000" },
      message: { content: { type: "text", text: "Your code is 1234" } },
    },
  ],
  (error, response) => {
    process.stdout.write(JSON.stringify({ error, response }) + "\n");
  },
);
