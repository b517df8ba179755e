// optin's signup proof of work, for the hosted form: fetches an ALTCHA challenge from the
// form's data-altcha-challenge URL, solves it with Web Crypto and puts the payload in the
// form's hidden "altcha" field. A submit before it is solved (or after the challenge
// expired) waits for a fresh solution, then goes on. It reaches nothing outside its own
// document, so it runs the same inside a frame. Without JavaScript the form's <noscript>
// text says what is missing.
(function () {
  "use strict";
  var form = document.querySelector("form[data-altcha-challenge]");
  if (!form || !window.crypto || !window.crypto.subtle || !window.fetch) {
    return;
  }
  var field = form.querySelector("input[name=altcha]");
  if (!field) {
    field = document.createElement("input");
    field.type = "hidden";
    field.name = "altcha";
    form.appendChild(field);
  }
  var encoder = new TextEncoder();
  var expires = 0;
  var pending = null;

  function hex(buffer) {
    var bytes = new Uint8Array(buffer);
    var out = "";
    for (var i = 0; i < bytes.length; i++) {
      out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    }
    return out;
  }

  async function solve() {
    var response = await fetch(form.getAttribute("data-altcha-challenge"), {
      cache: "no-store",
      credentials: "omit",
    });
    if (!response.ok) {
      throw new Error("challenge: HTTP " + response.status);
    }
    var challenge = await response.json();
    for (var number = 0; number <= challenge.maxnumber; number++) {
      var digest = await crypto.subtle.digest(
        "SHA-256",
        encoder.encode(challenge.salt + number)
      );
      if (hex(digest) === challenge.challenge) {
        var query = challenge.salt.split("?")[1] || "";
        expires = Number(new URLSearchParams(query).get("expires")) || 0;
        field.value = btoa(
          JSON.stringify({
            algorithm: challenge.algorithm,
            challenge: challenge.challenge,
            number: number,
            salt: challenge.salt,
            signature: challenge.signature,
          })
        );
        form.setAttribute("data-altcha-state", "solved");
        return;
      }
    }
    throw new Error("challenge: no solution");
  }

  function fresh() {
    // A few seconds of margin: the post still has to travel.
    var stale = !field.value || Date.now() / 1000 > expires - 10;
    if (stale && !pending) {
      form.setAttribute("data-altcha-state", "solving");
      pending = solve().then(
        function () {
          pending = null;
        },
        function (error) {
          pending = null;
          form.setAttribute("data-altcha-state", "failed");
          throw error;
        }
      );
    }
    return pending || Promise.resolve();
  }

  form.addEventListener("submit", function (event) {
    if (field.value && Date.now() / 1000 <= expires - 10) {
      return;
    }
    event.preventDefault();
    fresh().then(
      function () {
        form.submit();
      },
      function () {
        // The server answers the missing proof with the form again and a message.
        form.submit();
      }
    );
  });
  fresh().catch(function () {});
})();
